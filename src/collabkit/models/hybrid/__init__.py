"""The HybridMF family (kind ``"hybrid"``): ids plus side features in one dot product."""

from collabkit.models.hybrid._estimator import HybridMF
from collabkit.models.hybrid._module import HybridDotProductBias

__all__ = ["HybridMF", "HybridDotProductBias"]
