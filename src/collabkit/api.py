"""The short public path: load data, split it, fit a model, in one call each."""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models import registry
from collabkit.models.base import Recommender

__all__ = ["load_dataset", "load_ratings", "load_split", "split", "fit", "evaluate", "lr_find",
           "check_data_kind", "SPLITS"]

SPLITS = ("random", "user", "temporal", "last", "none")
CANONICAL = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def _from_movielens(ml: Any, ratings: pd.DataFrame | None = None) -> Interactions:
    df = ml.ratings if ratings is None else ratings
    return Interactions.from_dataframe(
        df, item_meta=ml.items, user_meta=ml.users, rating_range=ml.rating_range, name=ml.name)


def load_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None,
                 download: bool = True, progress: bool = True) -> Interactions:
    """A MovieLens dataset by name (``"ml-latest-small"`` ships with collabkit), or Gowalla.

    Titles, genres and years become ``item_meta``; ml-100k's and ml-1m's demographics become
    ``user_meta``. See :func:`collabkit.data.movielens.load_movielens` for where files are
    looked for and cached. ``"gowalla"`` (implicit check-ins, read from
    ``$COLLABKIT_DATA/gowalla``, never downloaded) returns its train and test rows together, train
    first; ``load_split("gowalla", "canonical")`` gives them apart.
    """
    from collabkit.data.movielens import load_movielens

    if name == "gowalla":
        from collabkit.data.implicit import load_gowalla

        train, test = load_gowalla(data_dir)
        return _concat(train, test)

    return _from_movielens(load_movielens(name, data_dir=data_dir, download=download,
                                          progress=progress))


def load_ratings(source: str | os.PathLike[str] | pd.DataFrame, *,
                 user_col: str | int | None = None, item_col: str | int | None = None,
                 rating_col: str | int | None = None,
                 timestamp_col: str | int | None | Literal[False] = None,
                 sep: str | None = None, encoding: str | None = None,
                 rating_range: tuple[float, float] | None = None,
                 header: bool | None = None,
                 item_meta: pd.DataFrame | None = None,
                 name: str | None = None) -> Interactions:
    """Read a ratings file or DataFrame into :class:`Interactions`.

    By default the first three columns are user, item and rating and a fourth is the
    timestamp (as fastai's ``CollabDataLoaders.from_df``). Bad rows raise
    :class:`~collabkit.errors.DataError` naming the file, line and column. ``sep``, ``header``
    and ``encoding`` are :func:`~collabkit.data.read.read_ratings`' (``None``: detected).
    """
    from collabkit.data.read import read_ratings

    df = read_ratings(source, user_col=user_col, item_col=item_col, rating_col=rating_col,
                      timestamp_col=timestamp_col, sep=sep, header=header,
                      encoding=encoding, rating_range=rating_range)
    label = name or (os.path.basename(os.fspath(source))
                     if not isinstance(source, pd.DataFrame) else "dataframe")
    return Interactions.from_dataframe(df, rating_range=rating_range, item_meta=item_meta,
                                       name=label)


def load_split(name: str, split_name: str, *, data_dir: str | os.PathLike[str] | None = None,
               download: bool = True, progress: bool = True
               ) -> tuple[Interactions, Interactions]:
    """A canonical split shipped with a dataset (ml-100k's ``u1``–``u5``, ``ua``, ``ub``).

    Train and test share one vocabulary, so ids unseen in training are counted, not lost.
    """
    from collabkit.data.movielens import canonical_split, load_movielens

    if name == "gowalla":
        from collabkit.data.implicit import load_gowalla

        if split_name not in ("canonical", "test"):
            raise ConfigError(f"gowalla has one split, 'canonical' (LightGCN's train.txt and "
                              f"test.txt), not {split_name!r}")
        return load_gowalla(data_dir)
    ml = load_movielens(name, data_dir=data_dir, download=download, progress=progress)
    base, test = canonical_split(ml, split_name)
    both = _from_movielens(ml, pd.concat([base, test], ignore_index=True))
    return both.take(np.arange(len(base))), both.take(np.arange(len(base), len(both)))


def _concat(a: Interactions, b: Interactions) -> Interactions:
    """Rows of ``a`` then ``b``, two tables that share their vocabularies."""
    from dataclasses import replace

    return replace(a, users=np.concatenate([a.users, b.users]),
                   items=np.concatenate([a.items, b.items]),
                   ratings=np.concatenate([a.ratings, b.ratings]))


def split(data: Interactions, how: str = "random", *, test_frac: float = 0.2, k: int = 1,
          seed: int | None = 0) -> tuple[Interactions, Interactions]:
    """Split ``data`` into (train, test) rows.

    Parameters
    ----------
    how : {"random", "user", "temporal", "last"}
        ``random``: a ``test_frac`` share of all rows; ``user``: that share of each user's
        rows; ``temporal``: rows after the global time quantile ``1 - test_frac``;
        ``last``: each user's ``k`` latest rows.
    """
    from collabkit.data import split as sp

    if how == "random":
        s = sp.random_split(len(data), test_frac=test_frac, seed=seed)
    elif how == "user":
        s = sp.user_fraction_split(data.users, test_frac=test_frac, seed=seed)
    elif how in ("temporal", "last"):
        if data.timestamps is None:
            raise ConfigError(f"split {how!r} needs timestamps and {data.name or 'this data'} "
                              "has none; use 'random' or 'user', or give a timestamp column")
        s = (sp.temporal_split(data.timestamps, test_frac=test_frac) if how == "temporal"
             else sp.leave_last_k_out(data.users, data.timestamps, k=k, seed=seed))
    else:
        raise ConfigError(f"unknown split {how!r}; choose one of {SPLITS[:-1]} "
                          f"or a canonical ml-100k split {CANONICAL}")
    return data.take(s.train), data.take(s.test)


def fit(data: Interactions, model: Any = "dot", *, valid: Interactions | None = None,
        recipe: str | None = None, **params: Any) -> Recommender:
    """Fit a model by kind in one call, like fastai's ``collab_learner`` + ``fit_one_cycle``.

    Parameters
    ----------
    data : Interactions
        Training rows. Validation is carved from them (``valid_frac``) unless ``valid``
        is given.
    model : str, Recommender or torch.nn.Module
        A kind (``"dot"`` for BiasedMF, ``"nn"``, ``"hybrid"``, ... see
        :func:`collabkit.model_kinds`), an unfitted estimator, or your own ``nn.Module``
        whose ``forward(users, items)`` takes index tensors: it is trained and returned as a
        :class:`~collabkit.models.module.ModuleRecommender` (kind ``"module"``; ``params``
        are its ``epochs``, ``lr``, ``wd``, ...).
    recipe : str or None
        Named settings (:mod:`collabkit.models.recipes`): ``"chapter"`` gives the fast.ai
        chapter's AdamW, weight decay 0.1, batches of 64, one-cycle at 5e-3 for 5 epochs and
        20 % random validation. ``params`` override it.
    **params
        Constructor arguments of the chosen model, such as ``n_factors=50, epochs=5``.

    Raises
    ------
    ConfigError
        A parameter the chosen kind does not take; the message lists those it does.
    """
    if recipe is not None:
        from collabkit.models.recipes import recipe_params

        kind = model if isinstance(model, str) else getattr(model, "kind", "module")
        params = {**recipe_params(recipe, kind), **params}
    if isinstance(model, Recommender):
        est = model.set_params(**params) if params else model
    elif _is_torch_module(model):  # issue 12: any nn.Module(users, items) as a full model
        from collabkit.models.module import ModuleRecommender

        est = ModuleRecommender(model, **params)
    else:
        cls = registry.get(model)
        accepted = list(cls().get_params())  # issue 9: the model says what it takes
        unknown = [k for k in params if k not in accepted]
        if unknown:
            raise ConfigError(f"model {model!r} does not take {', '.join(map(repr, unknown))}; "
                              f"its parameters are {', '.join(accepted) or '(none)'}")
        est = cls(**params)
    check_data_kind(data, est)
    return est.fit(data, valid)


def check_data_kind(data: Interactions, model: Any) -> None:
    """Refuse a rating model on implicit data (issue 13): fitted to interactions without
    ratings it would learn that every weight is 1. (A ranker on star ratings is allowed: it
    reads each rating as the interaction's weight, its confidence; ``to_implicit(data)``
    counts every rated pair once instead.)
    """
    from collabkit.metrics.ranking_report import is_ranker

    kind = getattr(model, "kind", "")
    if not isinstance(model, Recommender) or not kind:
        return
    if data.implicit and not is_ranker(model):
        raise ConfigError(f"model {kind!r} predicts ratings, and {data.name or 'the data'} is "
                          "implicit feedback (interactions without ratings); choose an implicit "
                          f"kind: {', '.join(ranker_kinds())}")


def ranker_kinds() -> list[str]:
    """The implicit-feedback kinds (rankers) in :mod:`collabkit.models.registry`, sorted."""
    from collabkit.metrics.ranking_report import is_ranker

    return [k for k in registry.kinds() if k != "module" and is_ranker(registry.get(k))]


def evaluate(model: Recommender, test: Interactions | pd.DataFrame, *, k: int = 20,
             baselines: bool = True, name: str | None = None) -> Any:
    """Score ``model`` on held-out ``test`` rows, baselines beside, the way its kind is measured.

    A rating model gets RMSE and MAE (:func:`collabkit.metrics.evaluate.evaluate`, an
    :class:`~collabkit.metrics.evaluate.EvalReport`); an implicit-feedback model gets
    full-ranking Recall, NDCG, HR, MAP and MRR at ``k``, coverage and mean popularity, with
    popularity and item-kNN fitted to its training rows beside it
    (:func:`collabkit.metrics.ranking_report.evaluate_implicit`, a ``RankingReport``).
    ``name`` labels the model's row of a rating model's report.
    """
    from collabkit.metrics.ranking_report import evaluate_implicit, is_ranker

    if is_ranker(model):
        if isinstance(test, pd.DataFrame):
            from collabkit.data.implicit import read_interactions

            test = read_interactions(test, user_col="user", item_col="item")
        return evaluate_implicit(model, test, k, baselines=baselines)
    from collabkit.metrics.evaluate import evaluate as evaluate_ratings

    return evaluate_ratings(model, test, name=name)


def _is_torch_module(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a module instance means torch is already imported
    return torch is not None and isinstance(obj, torch.nn.Module)


def lr_find(model: str | dict[str, Any] | Recommender, data: Interactions,
            **kw: Any) -> Any:
    """The learning-rate finder (:func:`collabkit.train.lr_find.lr_find`) for a model kind,
    its parameters with a ``kind`` key (``{"kind": "dot", "n_factors": 50}``), or an
    estimator. Returns an :class:`~collabkit.train.lr_find.LRFindResult`.

    Raises
    ------
    UnknownModelKindError
        The kind is not known; the message lists the known kinds.
    ConfigError
        The model is not trained by gradient descent, or a setting is out of range.
    """
    from collabkit.train.lr_find import lr_find as _lr_find

    if isinstance(model, str):
        model = {"kind": model}
    if isinstance(model, dict):
        params = dict(model)
        model = registry.get(params.pop("kind", "dot"))(**params)
    elif not isinstance(model, Recommender):
        raise ConfigError("lr_find needs a model kind, a Recommender (fitted or not) or a dict "
                          f"of its parameters with a 'kind' key, got {type(model).__name__}")
    return _lr_find(model, data, **kw)

