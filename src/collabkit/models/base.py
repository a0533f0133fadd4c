"""The :class:`Recommender` contract every collabkit model follows.

scikit-learn's estimator rules apply: ``__init__`` only stores its arguments, ``fit`` validates
first, sets attributes whose names end in ``_`` and returns ``self``. Raw ids go in and come
out; dense indices stay inside.

Unknown ids (never seen in training) follow one policy everywhere: the prediction falls back
to the damped-bias baseline (global mean + whatever bias is known) and is flagged in the
``fallback`` column; :meth:`Recommender.recommend` for an unknown user ranks items by that
baseline and says so in the ``tier`` column. Nothing raises for an unknown id.
"""

from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary, as_id_array
from collabkit.errors import (
    ConfigError,
    DataError,
    DataWarning,
    ModelFitWarning,
    NotFittedError,
)
from collabkit.models._topk import recommend_topk

__all__ = ["Recommender", "FallbackTier"]

FallbackTier = str  # "model" | "baseline"


class Recommender(ABC):
    """Abstract base of collabkit's models.

    Fitted attributes shared by every model
    ---------------------------------------
    user_vocab_, item_vocab_ : Vocabulary
        The users and items seen in training.
    global_mean_ : float
        Mean training rating.
    user_bias_base_, item_bias_base_ : numpy.ndarray
        Damped-mean biases of the baseline used for fallbacks.
    seen_indptr_, seen_indices_, seen_ratings_ : numpy.ndarray
        CSR of the items each user rated in training and the ratings (for ``exclude_seen``
        and explanations).
    rating_range_ : tuple of float
    item_meta_ : pandas.DataFrame or None
        Titles, genres and years of the training items, indexed by raw id.
    """

    #: name used in saved model files and on the command line (listed in
    #: :mod:`collabkit.models.registry`)
    kind: ClassVar[str] = ""

    # fitted state shared by every model (set by fit, or by load from a model folder)
    rating_range_: tuple[float, float]
    seen_ratings_: np.ndarray | None  # None in files from before 0.1.0's release
    item_meta_: pd.DataFrame | None
    data_fingerprint_: str | None  # None in a loaded ensemble's members
    n_train_: int | None
    seed_: int | None
    fit_seconds_: float | None

    # -------------------------------------------------------------- sklearn contract
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, read back from the attributes of the same name."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments; unknown names raise :class:`ConfigError`."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter {key!r}; "
                                  f"parameters are {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------- fitting
    def fit(self, data: Interactions, valid: Interactions | None = None) -> Self:
        """Learn from ``data``; ``valid`` (or a slice carved from ``data``) is monitored."""
        if not isinstance(data, Interactions):
            raise DataError(f"fit expects an Interactions table, got {type(data).__name__}; "
                            "build one with collabkit.load_ratings(...) or "
                            "Interactions.from_dataframe")
        if len(data) == 0:
            raise DataError("cannot fit on an empty ratings table")
        self._fit_common(data)
        lo, hi = float(data.ratings.min()), float(data.ratings.max())
        # issue 8: nothing to learn, and no warning said so; implicit data: unit weights by design
        if lo == hi and not data.implicit:
            warnings.warn(f"every training rating is {lo:g}: the model can learn nothing beyond "
                          f"predicting {lo:g} for every pair. Check the rating column.",
                          DataWarning, stacklevel=2)
        u = self.user_vocab_.index(data.user_vocab.ids(data.users))
        i = self.item_vocab_.index(data.item_vocab.ids(data.items))
        self._fit(data, u, i, valid)
        return self

    def _fit_common(self, data: Interactions) -> None:
        users_raw = data.user_vocab.ids(np.unique(data.users))
        items_raw = data.item_vocab.ids(np.unique(data.items))
        self.user_vocab_ = Vocabulary(users_raw)
        self.item_vocab_ = Vocabulary(items_raw)
        u = self.user_vocab_.index(data.user_vocab.ids(data.users))
        i = self.item_vocab_.index(data.item_vocab.ids(data.items))
        r = data.ratings.astype(np.float64)
        self.global_mean_ = float(r.mean())
        self.user_bias_base_, self.item_bias_base_ = damped_biases(
            u, i, r, len(self.user_vocab_), len(self.item_vocab_), self.global_mean_)
        order = np.lexsort((i, u))
        self.seen_indices_ = i[order].astype(np.int64)
        self.seen_ratings_ = data.ratings[order].astype(np.float32)
        self.seen_indptr_ = np.concatenate(
            [[0], np.cumsum(np.bincount(u, minlength=len(self.user_vocab_)))]).astype(np.int64)
        lo, hi = data.rating_range
        self.rating_range_ = (float(lo), float(hi))
        self.item_meta_ = None
        if data.item_meta is not None:
            self.item_meta_ = data.item_meta.reindex(items_raw)
        self.data_fingerprint_ = data.fingerprint()
        self.n_train_ = len(data)

    def _check_beats_baseline(self, train: tuple[np.ndarray, np.ndarray, np.ndarray],
                              valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                              model_rmse: float | None) -> None:
        """Warn when the fitted model scores worse on the validation rows than the damped-bias
        baseline fitted to the same training rows (issue 8: a too-high learning rate)."""
        if valid is None or model_rmse is None or not len(valid[2]) \
                or float(np.ptp(train[2])) == 0.0:
            return
        u, i, r = (np.asarray(a) for a in train)
        r = r.astype(np.float64)
        mu = float(r.mean())
        bu, bi = damped_biases(u, i, r, len(self.user_vocab_), len(self.item_vocab_), mu)
        lo, hi = self.rating_range_
        vu, vi, vr = valid
        base = np.clip(mu + bu[vu] + bi[vi], lo, hi)
        base_rmse = float(np.sqrt(np.mean((base - np.asarray(vr, dtype=np.float64)) ** 2)))
        if model_rmse > base_rmse:
            lr = getattr(self, "lr", None)
            hint = f" (lr={lr:g})" if isinstance(lr, int | float) else ""
            warnings.warn(
                f"the trained {type(self).__name__} scores worse than the damped-bias baseline "
                f"on its {len(vr)} validation rows (RMSE {model_rmse:.4f} vs "
                f"{base_rmse:.4f}): it learned nothing useful beyond the biases. Lower the "
                f"learning rate{hint} if the training loss jumped around, train for more "
                "epochs if it was still falling, or raise weight decay."
                + self._when_baseline_wins(model_rmse, base_rmse),
                ModelFitWarning, stacklevel=4)

    def _when_baseline_wins(self, model_rmse: float, base_rmse: float) -> str:
        """Called when the model loses to the baseline on validation; returns a sentence
        to add to the warning (a model that then serves the baseline says so here)."""
        return ""

    @abstractmethod
    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        """Model-specific training on dense indices ``u``, ``i`` (into the model's vocabs)."""

    # -------------------------------------------------------------- scoring hooks
    @abstractmethod
    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Predicted ratings for known dense index pairs, float64."""

    @abstractmethod
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        """Scores of every item for known users ``u``: shape ``(len(u), n_items)``."""

    def score_users(self, u: np.ndarray) -> torch.Tensor:
        """Scores of every item for known dense user indices ``u``: ``(len(u), n_items)``.

        The batched form of :meth:`predict_ratings` that top-N, fold-in comparisons and
        ensembles use; rows follow ``u``, columns the item vocabulary.
        """
        self.check_fitted()
        return self._score_users(np.asarray(u))

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless the model is fitted (or loaded)."""
        if not hasattr(self, "user_vocab_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(data) "
                                 "or load a saved model with collabkit.load_model(path)")

    _check_fitted = check_fitted  # the old private name, still used by other layers

    def _baseline_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Damped-bias baseline where ``-1`` marks an unknown user or item (bias 0)."""
        bu = np.where(u >= 0, self.user_bias_base_[np.maximum(u, 0)], 0.0)
        bi = np.where(i >= 0, self.item_bias_base_[np.maximum(i, 0)], 0.0)
        lo, hi = self.rating_range_
        return np.clip(self.global_mean_ + bu + bi, lo, hi)

    # -------------------------------------------------------------- public API
    def predict_ratings(self, users: Any, items: Any, *, clip: bool = True
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions for raw id pairs and a boolean mask of those that fell back.

        Each pair is matched on its own: an unknown id sends only its own row to the baseline.
        ``clip=True`` (the default) clips predictions to the training ``rating_range_``;
        ``clip=False`` returns the model's raw output (a sigmoid ``y_range`` such as (0, 5.5)
        can leave the rating scale).
        """
        self._check_fitted()
        users_a, items_a = as_id_array(users), as_id_array(items)
        if users_a.shape != items_a.shape:
            raise DataError(f"users and items must pair up: got {users_a.size} users and "
                            f"{items_a.size} items")
        u = self.user_vocab_.index(users_a)
        i = self.item_vocab_.index(items_a)
        known = (u >= 0) & (i >= 0)
        out = self._baseline_idx(u, i)
        if known.any():
            out[known] = self._predict_idx(u[known], i[known])
        return (self._clip_scores(out) if clip else out), ~known

    def _clip_scores(self, scores: np.ndarray) -> np.ndarray:
        """Scores clipped to the training rating range."""
        lo, hi = self.rating_range_
        return np.clip(scores, lo, hi)

    def predict(self, users: Any, items: Any, *, clip: bool = True) -> pd.DataFrame:
        """Predicted ratings for raw ``(user, item)`` pairs.

        Parameters
        ----------
        users, items : id or sequence of ids
            Raw ids, paired up; ``42`` and ``"42"`` name the same id.
        clip : bool, default True
            Clip predictions to the rating range seen in training (``rating_range_``).
            ``clip=False`` gives the model's raw output, which may leave the scale.

        Returns
        -------
        pandas.DataFrame
            Columns ``user``, ``item``, ``prediction``, ``fallback`` (True where the user or
            the item was unknown and the damped-bias baseline answered) and ``title``.
        """
        pred, fb = self.predict_ratings(users, items, clip=clip)
        items_a = as_id_array(items)
        return pd.DataFrame({"user": as_id_array(users), "item": items_a,
                             "prediction": pred, "fallback": fb, "title": self._titles(items_a)})

    def titles(self, raw_items: Any) -> list[str | None]:
        """Titles of raw item ids from the training metadata (None where unknown)."""
        if self.item_meta_ is None or "title" not in self.item_meta_.columns:
            return [None] * len(raw_items)
        s = self.item_meta_["title"].reindex(raw_items)
        return [None if pd.isna(t) else str(t) for t in s.tolist()]

    _titles = titles  # the old private name

    def recommend(self, users: Any, n: int = 10, *, exclude_seen: bool = True,
                  exclude: Any = None, candidates: Any = None, clip: bool = True,
                  policy: str = "top", **policy_options: Any) -> pd.DataFrame:
        """Top-``n`` items for each raw user id.

        Parameters
        ----------
        users : id or sequence of ids
        n : int
            Items per user.
        exclude_seen : bool
            Leave out items the user rated in training.
        exclude : sequence of item ids, optional
            Items never to recommend.
        candidates : sequence of item ids, optional
            Only rank these items.
        clip : bool, default True
            Report scores clipped to ``rating_range_``, as :meth:`predict` does; ``clip=False``
            reports the raw scores. Items are ranked by the raw scores either way, which is
            the clipped order with ties broken by the raw value.
        policy : {"top", "explore", "mmr", "debias"}, default "top"
            How the list is drawn from the scores (:mod:`collabkit.recommend.rerank`). ``"top"``
            is the plain top-``n``. ``"explore"`` fills half the list from each user's 200
            best items at random (seeded by ``seed=``): in the simulated feedback loop of
            ``docs/feedback-loop.md`` it keeps 2.4-2.7x plain top-10's catalogue coverage after
            10 rounds, NDCG@10 within a few percent. ``"mmr"`` (diversity on the item factors,
            ``lam=``) and ``"debias"`` (popularity penalty, ``beta=``) are there to compare;
            in that simulation they did not widen coverage at equal accuracy.
        **policy_options
            Options of the policy (``n_explore``, ``pool``, ``seed``, ``lam``, ``beta``, ...).

        Returns
        -------
        pandas.DataFrame
            Long format, the same shape for one user or many: ``user``, ``rank`` (1-based),
            ``item``, ``score``, ``title``, ``tier`` (``"model"``, or ``"baseline"`` for a user
            the model never saw).
        """
        self._check_fitted()
        if int(n) < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        if policy != "top" or policy_options:
            return self._recommend_reranked(users, int(n), policy, exclude_seen=exclude_seen,
                                            exclude=exclude, candidates=candidates, clip=clip,
                                            **policy_options)
        return recommend_topk(self, as_id_array(users), int(n), exclude_seen=exclude_seen,
                              exclude=exclude, candidates=candidates, clip=clip)

    # -------------------------------------------------------------- cold start, interpretation
    # The lazy convenience facades below are the only imports from models/ up into
    # recommend/ and interpret; they are listed as allowed exceptions in .importlinter.
    def _recommend_reranked(self, users: Any, n: int, policy: str, **kw: Any) -> pd.DataFrame:
        """:meth:`recommend` with a re-ranking ``policy`` (:mod:`collabkit.recommend.rerank`)."""
        from collabkit.recommend.rerank import recommend_reranked

        return recommend_reranked(self, users, n, policy=policy, **kw)  # type: ignore[arg-type]

    def recommend_new_user(self, ratings: Any = None, n: int = 10, **kw: Any) -> pd.DataFrame:
        """Top-``n`` for a user the model never saw, from ``{item: rating}`` (no retraining).

        See :func:`collabkit.recommend.coldstart.recommend_new_user`: popularity with no
        ratings, bias-adjusted popularity with few, fold-in (``tier="personal"``) with enough.
        """
        from collabkit.recommend.coldstart import recommend_new_user

        return recommend_new_user(self, ratings, n, **kw)

    def fold_in(self, ratings: Any, **kw: Any) -> Any:
        """A new user's vector and bias from ``{item: rating}``, in milliseconds.

        See :func:`collabkit.recommend.foldin.fold_in_user`.
        """
        from collabkit.recommend.foldin import fold_in_user

        return fold_in_user(self, ratings, **kw)

    def similar_items(self, item: Any, n: int = 10, **kw: Any) -> pd.DataFrame:
        """Items nearest to ``item`` by cosine of the factors.

        See :func:`collabkit.interpret.similar_items`.
        """
        from collabkit.interpret import similar_items

        return similar_items(self, item, n, **kw)

    def similar_users(self, user: Any, n: int = 10, **kw: Any) -> pd.DataFrame:
        """Users nearest to ``user`` (:func:`collabkit.interpret.similar_users`)."""
        from collabkit.interpret import similar_users

        return similar_users(self, user, n, **kw)

    # -------------------------------------------------------------- persistence
    def save(self, path: str) -> str:
        """Write the model to folder ``path`` atomically (safetensors + JSON, no pickle).

        ``path`` must be new, empty, or a folder collabkit saved a model in; see
        :func:`collabkit.models.persist.save_model` for what is refused and the concurrency
        guarantees.
        """
        from collabkit.models.persist import save_model

        return save_model(self, path)

    @abstractmethod
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """Model-specific tensors to save."""

    @abstractmethod
    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        """Rebuild model-specific state from saved tensors."""

    def _extra_state(self) -> dict[str, Any]:
        """Model-specific JSON-ready state to save (for example the training history)."""
        return {}


def damped_biases(u: np.ndarray, i: np.ndarray, r: np.ndarray, n_users: int, n_items: int,
                  mu: float, damping: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Damped-mean item then user biases (Koren's baseline, as in LensKit's ``Bias``).

    .. math::

        b_i = \frac{\sum_{u} (r_{ui} - \mu)}{n_i + \lambda}, \qquad
        b_u = \frac{\sum_{i} (r_{ui} - \mu - b_i)}{n_u + \lambda}
    """
    bi = np.bincount(i, weights=r - mu, minlength=n_items) / (
        np.bincount(i, minlength=n_items) + damping)
    bu = np.bincount(u, weights=r - mu - bi[i], minlength=n_users) / (
        np.bincount(u, minlength=n_users) + damping)
    return bu, bi
