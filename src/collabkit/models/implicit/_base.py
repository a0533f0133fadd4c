"""A thin adapter from the rating-based :class:`Recommender` contract to implicit feedback.

The base class assumes star ratings in three places; this adapter fixes each without changing
the base class:

- its fallback for unknown users is the damped-bias *rating* baseline, which is flat when every
  weight is 1. Here the "baseline" is popularity: ``global_mean_ = 0`` and ``item_bias_base_``
  is each item's share of the training users, so ``recommend`` for an unknown user ranks by
  popularity (``tier="baseline"``);
- ``predict`` returns a *score* (higher ranks first), not a rating on a scale;
- ``fold_in`` and ``similar_items`` dispatch to factor tables of biased rating models; here
  each model answers from its own state (:meth:`ImplicitRecommender.fold_in` takes items, not
  ``{item: rating}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.errors import ConfigError, DataError
from collabkit.models.base import Recommender

__all__ = ["ImplicitRecommender", "csr_from_ids"]


def fingerprint(data: Interactions, chunk: int = 1 << 20) -> str:
    """:meth:`Interactions.fingerprint`, computed a million rows at a time: the same digest
    without a 25M-element array of Python objects (about 1 GB) at once."""
    h = hashlib.sha256()
    for codes, vocab in ((data.users, data.user_vocab), (data.items, data.item_vocab)):
        for s in range(0, len(codes), chunk):
            ids = np.asarray(vocab.ids(codes[s : s + chunk]), dtype=object)
            h.update(pd.util.hash_array(ids).tobytes())
    h.update(np.ascontiguousarray(data.ratings).tobytes())
    return h.hexdigest()[:16]


def csr_from_ids(rows: np.ndarray, cols: np.ndarray, values: np.ndarray | None,
                 shape: tuple[int, int]) -> sp.csr_matrix:
    """A float32 CSR matrix; repeated (row, col) pairs are summed."""
    v = np.ones(len(rows), np.float32) if values is None else values.astype(np.float32)
    m = sp.csr_matrix((v, (rows, cols)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    return m


class ImplicitRecommender(Recommender):
    """Base of collabkit's implicit-feedback rankers (kinds ``ials``, ``ease``, ``gfcf``, ...).

    **Recency** (kinds whose scores are linear in a user's interaction row: ``ease``,
    ``itemknn``, ``gfcf``; issue 13). With ``recency=H`` the row is weighed by how recent each
    interaction is when scoring: the ``k``-th most recent counts ``0.5 ** (k / H)`` (the newest
    counts 1; a repeated pair counts at its newest time). It needs timestamps; fitting is
    unchanged; a new user's items (:meth:`fold_in`) are read oldest first. On next-item tasks
    (each user's latest interaction held out) a half-life of a few interactions helps a lot;
    ``collabkit tune`` searches it when the data has timestamps. ``set_params(recency=...)``
    acts at the next ``fit`` (the fitted value is ``recency_``, saved with the model).

    Fitted attributes beyond :class:`Recommender`'s
    -----------------------------------------------
    item_popularity_ : numpy.ndarray
        Training users per item (float64).
    """

    kind = ""
    _threads: int | None = None  # dense BLAS work: let torch use every core it was given

    def _fit_common(self, data: Interactions) -> None:
        """The attributes :meth:`Recommender._fit_common` sets, built lean (issue 13: 25M
        interactions in 4 GB): no rating biases (the fallback is popularity, see the module
        docstring), no raw-id copies of the rows, the seen lists straight from one CSR matrix
        (a repeated pair becomes one entry with the summed weight)."""
        self.__dict__.pop("_x_cache", None)
        ucodes, icodes = np.unique(data.users), np.unique(data.items)
        self.user_vocab_ = Vocabulary(data.user_vocab.ids(ucodes))
        self.item_vocab_ = Vocabulary(data.item_vocab.ids(icodes))
        nu, ni = len(ucodes), len(icodes)
        u, i = np.searchsorted(ucodes, data.users), np.searchsorted(icodes, data.items)
        x = csr_from_ids(u, i, data.ratings, (nu, ni))
        self.seen_indptr_ = x.indptr.astype(np.int64)
        self.seen_indices_ = x.indices.astype(np.int64)
        self.seen_ratings_ = x.data
        lo, hi = data.rating_range
        self.rating_range_ = (float(lo), float(hi))
        self.item_meta_ = None if data.item_meta is None else data.item_meta.reindex(
            self.item_vocab_.ids(np.arange(ni)))
        self.data_fingerprint_ = fingerprint(data)
        self.n_train_ = len(data)
        counts = np.bincount(x.indices, minlength=ni).astype(np.float64)
        self.item_popularity_ = counts  # training users per item
        self.global_mean_ = 0.0
        self.item_bias_base_ = counts / max(1, nu)
        self.user_bias_base_ = np.zeros(nu)
        self._fit_recency(data, u, i)

    # -------------------------------------------------------------- recency (issue 13)
    def _fit_recency(self, data: Interactions, u: np.ndarray, i: np.ndarray) -> None:
        """For a kind that takes ``recency``: each seen entry's rank from the user's newest
        (0 = the newest; a repeated pair counts at its newest time), in the seen lists' order.
        """
        self.recency_ = h = getattr(self, "recency", None)
        self.seen_recency_: np.ndarray | None = None
        if h is None:
            return
        if isinstance(h, bool) or not (isinstance(h, int | float) and np.isfinite(h) and h > 0):
            raise ConfigError(f"recency must be a number of interactions > 0 (the half-life of "
                              f"a past interaction's weight), or None; got {h!r}")
        if data.timestamps is None:
            raise DataError("recency weighs each user's interactions by how recent they are, "
                            "and these interactions have no timestamps; pass data with a "
                            "timestamp column, or leave recency=None")
        ni = len(self.item_vocab_)
        key = u.astype(np.int64) * ni + i
        order = np.lexsort((data.timestamps, key))  # by pair, then time: the last is newest
        last = np.r_[np.flatnonzero(np.diff(key[order])), len(order) - 1]
        pair, newest = key[order][last], data.timestamps[order][last]  # pairs in CSR order
        pu = pair // ni
        by_time = np.lexsort((pair % ni, -newest, pu))  # per user, newest first
        starts = np.searchsorted(pu[by_time], pu[by_time], side="left")
        rank = np.empty(len(pair), np.int32)
        rank[by_time] = np.arange(len(pair)) - starts
        self.seen_recency_ = rank

    def _recency_weights(self, rank: np.ndarray) -> np.ndarray:
        half_life = float(self.recency_)  # type: ignore[arg-type]  # set when called
        return (0.5 ** (rank / half_life)).astype(np.float32)

    def _recency_tensors(self) -> dict[str, torch.Tensor]:
        r = getattr(self, "seen_recency_", None)
        return {} if r is None else {"seen.recency": torch.as_tensor(r)}

    def _load_recency(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.recency_ = extra.get("recency")
        r = tensors.get("seen.recency")
        self.seen_recency_ = None if r is None or self.recency_ is None else r.numpy()

    def _baseline_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The fallback score of a pair with an unknown user or item: the item's popularity.

        (The base class clips its rating baseline to the rating range, which is a single
        value for unweighted implicit data.)
        """
        return np.where(i >= 0, self.item_bias_base_[np.maximum(i, 0)], 0.0)

    def _clip_scores(self, scores: np.ndarray) -> np.ndarray:
        """Ranking scores are not ratings: nothing to clip them to."""
        return scores

    def _train_matrix(self, values: bool = True) -> sp.csr_matrix:
        """The training users x items matrix (weights, or ones) from the stored seen lists."""
        nu, ni = len(self.user_vocab_), len(self.item_vocab_)
        counts = np.diff(self.seen_indptr_)
        rows = np.repeat(np.arange(nu), counts)
        vals = self.seen_ratings_ if values and self.seen_ratings_ is not None else None
        return csr_from_ids(rows, self.seen_indices_, vals, (nu, ni))

    # -------------------------------------------------------------- scoring
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        """Scores of every item for interaction rows ``x`` (users x items, float32)."""
        raise NotImplementedError

    def _user_rows(self, u: np.ndarray) -> sp.csr_matrix:
        x = self.__dict__.get("_x_cache")
        if x is None:  # built once per fitted or loaded model
            x = self._train_matrix()
            rank = getattr(self, "seen_recency_", None)
            if rank is not None:  # each user's past weighed by how recent it is
                x.data *= self._recency_weights(rank)
            self.__dict__["_x_cache"] = x
        return x[np.asarray(u, dtype=np.int64)]

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        return self._score_rows(self._user_rows(u))

    @torch.no_grad()
    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.empty(len(u), dtype=np.float64)
        uniq, inv = np.unique(u, return_inverse=True)
        for s in range(0, len(uniq), 1024):
            rows = np.flatnonzero((inv >= s) & (inv < s + 1024))
            scores = self._score_users(uniq[s : s + 1024]).float().cpu().numpy()
            out[rows] = scores[inv[rows] - s, i[rows]]
        return out

    # -------------------------------------------------------------- new users, similar items
    def _item_vector(self, items: Any, weights: Any = None) -> sp.csr_matrix:
        """A one-row interaction matrix from raw item ids (unknown items are an error)."""
        self.check_fitted()
        raw = np.atleast_1d(np.asarray(items))
        if raw.size == 0:
            raise DataError("fold_in needs at least one item the user interacted with")
        idx = self.item_vocab_.index_strict(raw, what="item")
        w = None if weights is None else np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if w is not None and (w.shape != raw.shape or not np.all(np.isfinite(w) & (w >= 0))):
            raise DataError(f"weights must be {raw.size} finite numbers >= 0, one per item; "
                            f"got {w.tolist()}")
        if getattr(self, "recency_", None) is not None:  # the items in order: the last newest
            # rank of each distinct item by its last mention (as a repeated pair at fit time)
            uniq, from_end = np.unique(idx[::-1], return_index=True)
            rank = np.empty(uniq.size, np.int64)
            rank[np.argsort(from_end)] = np.arange(uniq.size)
            decay = self._recency_weights(rank[np.searchsorted(uniq, idx)])
            w = decay if w is None else w * decay
        return csr_from_ids(np.zeros(raw.size, np.int64), idx, w, (1, len(self.item_vocab_)))

    def fold_in(self, items: Any, weights: Any = None, **kw: Any) -> np.ndarray:  # type: ignore[override]
        """Scores of every item (in ``item_vocab_`` order) for a new user, without refitting.

        Parameters
        ----------
        items : sequence of raw item ids, or mapping item -> weight
            What the new user interacted with (a ``{item: rating}`` dict, as the rating models
            take, counts each item with its value as the weight). With ``recency`` set, in the
            order they happened: the last is the newest.
        weights : sequence of float, optional
            A weight (count) per item; 1 each by default.
        """
        if isinstance(items, Mapping):
            if weights is not None:
                raise ConfigError("pass weights either as the values of items or as weights=, "
                                  "not both")
            items, weights = list(items.keys()), list(items.values())
        if kw:
            raise ConfigError(f"{type(self).__name__}.fold_in takes items and weights; "
                              f"got unexpected {sorted(kw)}")
        return self._score_rows(self._item_vector(items, weights)).float().cpu().numpy()[0]

    def recommend_new_user(self, items: Any = None, n: int = 10,  # type: ignore[override]
                           weights: Any = None, **kw: Any) -> pd.DataFrame:
        """Top-``n`` for a user the model never saw, from the items they interacted with.

        With no items, the most popular items (``tier="popularity"``).
        """
        self.check_fitted()
        if int(n) < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        if items is None or np.atleast_1d(np.asarray(items)).size == 0:
            scores, tier, seen = self.item_bias_base_.copy(), "popularity", np.zeros(0, np.int64)
        else:
            scores = self.fold_in(items, weights, **kw).astype(np.float64)
            tier = "personal"
            seen = self.item_vocab_.index(np.atleast_1d(np.asarray(items)))
        scores[seen] = -np.inf
        return self._top_frame(scores, int(n), None, tier)

    def _top_frame(self, scores: np.ndarray, n: int, user: Any, tier: str) -> pd.DataFrame:
        k = min(n, int(np.isfinite(scores).sum()))
        top = np.argsort(-scores, kind="stable")[:k]
        raw = self.item_vocab_.ids(top)
        return pd.DataFrame({"user": [user] * k, "rank": np.arange(1, k + 1), "item": raw,
                             "score": scores[top], "title": self.titles(raw),
                             "tier": [tier] * k})

    def similar_items(self, item: Any, n: int = 10, **kw: Any) -> pd.DataFrame:
        """The ``n`` items the model would recommend to someone who only has ``item``.

        The columns of :func:`collabkit.interpret.similar_items`: ``rank``, ``item``,
        ``title``, ``similarity`` (the model's score) and ``n_ratings`` (interactions); the item
        itself is left out.
        """
        if kw:
            raise ConfigError(f"{type(self).__name__}.similar_items takes item and n; got "
                              f"unexpected {sorted(kw)}")
        sim = self._item_similarity(item).astype(np.float64)
        j = int(self.item_vocab_.index_strict([item], what="item")[0])
        sim[j] = -np.inf
        top = np.argsort(-sim, kind="stable")[: min(int(n), len(sim) - 1)]
        raw = self.item_vocab_.ids(top)
        return pd.DataFrame({"rank": np.arange(1, len(top) + 1), "item": raw,
                             "title": self.titles(raw), "similarity": sim[top],
                             "n_ratings": self.item_popularity_[top].astype(np.int64)})

    def _item_similarity(self, item: Any) -> np.ndarray:
        return self.fold_in([item])

    # -------------------------------------------------------------- persistence helpers
    @staticmethod
    def _csr_tensors(prefix: str, m: sp.csr_matrix) -> dict[str, torch.Tensor]:
        return {f"{prefix}.indptr": torch.as_tensor(m.indptr.astype(np.int64)),
                f"{prefix}.indices": torch.as_tensor(m.indices.astype(np.int64)),
                f"{prefix}.data": torch.as_tensor(m.data.astype(np.float32))}

    @staticmethod
    def _csr_from_tensors(prefix: str, t: dict[str, torch.Tensor],
                          shape: tuple[int, int]) -> sp.csr_matrix:
        return sp.csr_matrix((t[f"{prefix}.data"].numpy(), t[f"{prefix}.indices"].numpy(),
                              t[f"{prefix}.indptr"].numpy()), shape=shape)

    def _load_common(self, extra: dict[str, Any]) -> None:
        self.item_popularity_ = np.asarray(extra.get("item_popularity", []), dtype=np.float64)
        self.fit_seconds_ = extra.get("fit_seconds")

    def _extra_state(self) -> dict[str, Any]:
        out = {"item_popularity": self.item_popularity_.tolist(),
               "fit_seconds": getattr(self, "fit_seconds_", None)}
        if getattr(self, "recency_", None) is not None:
            out["recency"] = self.recency_
        return out
