"""collabkit: collaborative filtering from a ratings table to recommendations.

>>> import collabkit
>>> data = collabkit.load_dataset("ml-latest-small")            # doctest: +SKIP
>>> train, test = collabkit.split(data, "random", seed=42)      # doctest: +SKIP
>>> model = collabkit.fit(train, "dot", random_state=42)        # doctest: +SKIP
>>> collabkit.evaluate(model, test).table                       # doctest: +SKIP
>>> model.recommend(1, n=10)                                    # doctest: +SKIP

The public names below are imported on first use (PEP 562), so ``import collabkit`` and the
``collabkit`` command start without loading torch or pandas until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from collabkit._version import __version__

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    **dict.fromkeys(("fit", "evaluate", "load_dataset", "load_ratings", "load_split", "split"),
                    "collabkit.api"),
    "tune": "collabkit.tuning",
    **dict.fromkeys(("read_interactions", "to_implicit"), "collabkit.data.implicit"),
    **dict.fromkeys(("load_movielens", "read_ratings"), "collabkit.data"),
    "Interactions": "collabkit.data.interactions",
    **dict.fromkeys(("ModuleRecommender", "remember_args"), "collabkit.models.module"),
    "emb_sizes": "collabkit.models.nn",
    "Vocabulary": "collabkit.data.vocab",
    **dict.fromkeys(("load_model", "save_model"), "collabkit.models.persist"),
    "EvalReport": "collabkit.metrics.evaluate",
    **dict.fromkeys(("BayesianMF", "BiasBaseline", "BiasedALS", "BiasedMF", "DotProductBias",
                     "Ensemble", "GlobalMean", "HybridMF", "MLPRecommender", "Recommender",
                     "SVDpp"), "collabkit.models"),
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from collabkit.api import evaluate, fit, load_dataset, load_ratings, load_split, split
    from collabkit.data import load_movielens, read_ratings
    from collabkit.data.implicit import read_interactions, to_implicit
    from collabkit.data.interactions import Interactions
    from collabkit.data.vocab import Vocabulary
    from collabkit.metrics.evaluate import EvalReport
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
    from collabkit.models.module import ModuleRecommender, remember_args
    from collabkit.models.nn import emb_sizes
    from collabkit.models.persist import load_model, save_model
    from collabkit.tuning import tune

__all__ = [
    "__version__",
    "fit", "load_dataset", "load_ratings", "load_split", "split",
    "Interactions", "Vocabulary", "read_ratings", "load_movielens",
    "load_model", "save_model",
    "EvalReport", "evaluate", "tune", "read_interactions", "to_implicit",
    "BiasBaseline", "BiasedMF", "DotProductBias", "GlobalMean", "Recommender",
    "BiasedALS", "BayesianMF", "SVDpp", "Ensemble", "MLPRecommender", "HybridMF",
    "ModuleRecommender", "remember_args", "emb_sizes",
    "model_kinds",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    else:  # model classes listed in collabkit.models.registry, by class name
        from collabkit.models import registry

        value = registry.by_class_name(name)
        if value is None:
            raise AttributeError(f"module 'collabkit' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def model_kinds() -> list[str]:
    """The model kinds :func:`fit` and ``collabkit train --model`` accept."""
    from collabkit.models import registry

    return registry.kinds()
