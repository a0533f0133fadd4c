"""collabkit: collaborative filtering from a ratings table to recommendations.

>>> import collabkit
>>> data = collabkit.load_dataset("ml-latest-small")            # doctest: +SKIP
>>> train, test = collabkit.split(data, "random", seed=42)      # doctest: +SKIP
>>> model = collabkit.fit(train, "dot", random_state=42)        # doctest: +SKIP
>>> collabkit.evaluate(model, test).table                       # doctest: +SKIP
>>> model.recommend(1, n=10)                                    # doctest: +SKIP
"""

from typing import Any

from collabkit._version import __version__
from collabkit.api import fit, load_dataset, load_ratings, load_split, split
from collabkit.data import load_movielens, read_ratings
from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.metrics.evaluate import EvalReport, evaluate
from collabkit.models import (
    BayesianMF,
    BiasBaseline,
    BiasedALS,
    BiasedMF,
    DotProductBias,
    Ensemble,
    GlobalMean,
    HybridMF,
    MLPRecommender,
    Recommender,
    SVDpp,
)
from collabkit.models import registry as _registry
from collabkit.models.persist import load_model, save_model

__all__ = [
    "__version__",
    "fit", "load_dataset", "load_ratings", "load_split", "split",
    "Interactions", "Vocabulary", "read_ratings", "load_movielens",
    "load_model", "save_model",
    "EvalReport", "evaluate",
    "BiasBaseline", "BiasedMF", "DotProductBias", "GlobalMean", "Recommender",
    "BiasedALS", "BayesianMF", "SVDpp", "Ensemble", "MLPRecommender", "HybridMF",
    "model_kinds",
]


def model_kinds() -> list[str]:
    """The model kinds :func:`fit` and ``collabkit train --model`` accept."""
    return _registry.kinds()


def __getattr__(name: str) -> Any:
    """Model classes listed in :mod:`collabkit.models.registry`, by class name."""
    cls = _registry.by_class_name(name)
    if cls is None:
        raise AttributeError(f"module 'collabkit' has no attribute {name!r}")
    return cls
