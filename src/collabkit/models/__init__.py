"""Models: ``nn.Module`` definitions and the estimators around them.

The kinds ``collabkit.fit(data, kind)``, ``collabkit.load_model``, the CLI and the ensemble
know are listed in :mod:`collabkit.models.registry`; nothing registers by being imported here.
A class listed there is also reachable here (and as ``collabkit.<Class>``) by its name.
"""

from typing import Any

from collabkit.models import registry
from collabkit.models.als import BiasedALS
from collabkit.models.base import Recommender
from collabkit.models.baseline import BiasBaseline, GlobalMean
from collabkit.models.biased_mf import BiasedMF, DotProductBias
from collabkit.models.bpmf import BayesianMF
from collabkit.models.ensemble import Ensemble
from collabkit.models.hybrid import HybridMF
from collabkit.models.nn import EmbeddingNN, MLPRecommender
from collabkit.models.svdpp import SVDpp

__all__ = ["Recommender", "BiasBaseline", "GlobalMean", "DotProductBias", "BiasedMF",
           "BiasedALS", "BayesianMF", "SVDpp", "Ensemble", "MLPRecommender", "EmbeddingNN",
           "HybridMF"]


def __getattr__(name: str) -> Any:
    """A model class of :data:`collabkit.models.registry.KINDS` by its class name."""
    cls = registry.by_class_name(name)
    if cls is None:
        raise AttributeError(f"module 'collabkit.models' has no attribute {name!r}")
    return cls
