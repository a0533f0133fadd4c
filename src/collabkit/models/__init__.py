"""Models: ``nn.Module`` definitions and the estimators around them."""

from collabkit.models.base import Recommender
from collabkit.models.baseline import BiasBaseline, GlobalMean
from collabkit.models.dot import DotProductBias
from collabkit.models.mf import BiasedMF

__all__ = ["Recommender", "BiasBaseline", "GlobalMean", "DotProductBias", "BiasedMF"]
