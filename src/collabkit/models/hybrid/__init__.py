"""The HybridMF family (kind ``"hybrid"``): ids plus side features in one dot product."""

from collabkit.models.hybrid._estimator import HybridDotProductBias, HybridMF

__all__ = ["HybridMF", "HybridDotProductBias"]
