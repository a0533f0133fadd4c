"""The BiasedMF family (kind ``"dot"``): estimator, module, packed trainer and its numba kernel."""

from collabkit.models.biased_mf._estimator import BiasedMF
from collabkit.models.biased_mf._module import DotProductBias, sigmoid_range

__all__ = ["BiasedMF", "DotProductBias", "sigmoid_range"]
