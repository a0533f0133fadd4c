"""Models: ``nn.Module`` definitions and the estimators around them.

Importing this package registers every bundled kind, so ``collabkit.fit(data, kind)`` and
``collabkit.load_model`` know them all.
"""

from collabkit.models.als import BiasedALS
from collabkit.models.base import Recommender
from collabkit.models.baseline import BiasBaseline, GlobalMean
from collabkit.models.bpmf import BayesianMF
from collabkit.models.dot import DotProductBias
from collabkit.models.ensemble import Ensemble
from collabkit.models.hybrid import HybridMF
from collabkit.models.implicit import BPR, EASE, GraphFilter, ImplicitALS, ItemKNN, Popularity
from collabkit.models.mf import BiasedMF
from collabkit.models.mlp import MLPRecommender
from collabkit.models.nn import EmbeddingNN
from collabkit.models.svdpp import SVDpp

__all__ = ["Recommender", "BiasBaseline", "GlobalMean", "DotProductBias", "BiasedMF",
           "BiasedALS", "BayesianMF", "SVDpp", "Ensemble", "MLPRecommender", "EmbeddingNN",
           "HybridMF", "ImplicitALS", "EASE", "GraphFilter", "ItemKNN", "Popularity",
           "BPR"]
