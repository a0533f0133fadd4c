"""Score a model on held-out rows, always beside the two baselines."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.errors import DataWarning
from collabkit.metrics.rating import mae, rmse

__all__ = ["EvalReport", "evaluate", "training_overlap"]

#: share of distinct test users (or items) unknown to the model above which evaluate warns
UNKNOWN_SHARE_WARN = 0.5


@dataclass(frozen=True)
class EvalReport:
    """RMSE and MAE of a model and its baselines on the same held-out rows.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scorer (the model, ``global mean``, ``user+item bias``) with columns
        ``rmse``, ``mae``.
    n : int
        Held-out rows scored.
    n_fallback : int
        Rows whose user or item was unknown to the model, answered by the baseline.
    n_unknown_users, n_unknown_items : int
        Distinct held-out users and items the model never saw.
    overlap_with_training : int
        Held-out rows whose (user, item) pair the model was trained on.
    warnings : tuple of str
        Why the scores may not be honest held-out estimates (also issued as
        :class:`~collabkit.errors.DataWarning`): training pairs among the test rows, most test
        users or items unknown, item ids naming other titles than in training.
    """

    table: pd.DataFrame
    n: int
    n_fallback: int
    n_unknown_users: int
    n_unknown_items: int
    overlap_with_training: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def rmse(self) -> float:
        """The model's RMSE."""
        return float(self.table["rmse"].iloc[0])

    @property
    def mae(self) -> float:
        """The model's MAE."""
        return float(self.table["mae"].iloc[0])

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``{"rmse", "mae", "baselines": {...}, "n", "n_fallback", ...}``."""
        rows = self.table.to_dict(orient="index")
        name = self.table.index[0]
        return {
            "rmse": rows[name]["rmse"], "mae": rows[name]["mae"],
            "baselines": {k: v for k, v in rows.items() if k != name},
            "n": self.n, "n_fallback": self.n_fallback,
            "n_unknown_users": self.n_unknown_users, "n_unknown_items": self.n_unknown_items,
            "overlap_with_training": self.overlap_with_training,
            "warnings": list(self.warnings),
        }


def evaluate(model, test: Interactions | pd.DataFrame, *, name: str | None = None) -> EvalReport:
    """RMSE and MAE of ``model`` on ``test``, with the global-mean and damped-bias baselines.

    The model is scored on the predictions :meth:`~collabkit.models.base.Recommender.predict`
    returns (clipped to the training rating range). Ids are matched row by row.

    Both baselines come from the model's own training rows (stored in the model), so a saved
    model is scored against the same baselines without its training data. Held-out users or
    items the model never saw are answered by the bias baseline and counted in
    ``n_fallback``.

    A :class:`~collabkit.errors.DataWarning` (also listed in ``EvalReport.warnings``) says
    when the scores are not honest held-out estimates: test rows whose (user, item) pair the
    model was trained on (counted in ``overlap_with_training``), most test users or items
    unknown to the model, or item ids whose titles differ from the training data's (another
    dataset behind the same ids).
    """
    model._check_fitted()
    if isinstance(test, Interactions):
        users = test.user_vocab.ids(test.users)
        items = test.item_vocab.ids(test.items)
        y = test.ratings.astype(np.float64)
    else:
        users, items = test["user"].to_numpy(), test["item"].to_numpy()
        y = test["rating"].to_numpy(dtype=np.float64)
    pred, fb = model.predict_ratings(users, items)
    u = model.user_vocab_.index(users)
    i = model.item_vocab_.index(items)
    lo, hi = model.rating_range_
    mean_pred = np.full_like(y, np.clip(model.global_mean_, lo, hi))
    bias_pred = model._baseline_idx(u, i)
    label = name or type(model).__name__
    table = pd.DataFrame(
        {"rmse": [rmse(y, p) for p in (pred, mean_pred, bias_pred)],
         "mae": [mae(y, p) for p in (pred, mean_pred, bias_pred)]},
        index=pd.Index([label, "global mean", "user+item bias"], name="scorer"))
    overlap = training_overlap(model, u, i)
    notes = _warnings(model, test, users, items, u, i, overlap)
    for note in notes:
        warnings.warn(note, DataWarning, stacklevel=2)
    return EvalReport(table=table, n=int(len(y)), n_fallback=int(fb.sum()),
                      n_unknown_users=int(pd.unique(users[u < 0]).size),
                      n_unknown_items=int(pd.unique(items[i < 0]).size),
                      overlap_with_training=overlap, warnings=tuple(notes))


def training_overlap(model: Any, u: np.ndarray, i: np.ndarray) -> int:
    """How many dense ``(u, i)`` pairs (``-1``: unknown) are among the model's training pairs.

    Uses the pairs every model stores (``seen_indptr_``, ``seen_indices_``), so a saved model
    needs no training data.
    """
    known = (u >= 0) & (i >= 0)
    if not known.any():
        return 0
    n_items = np.int64(len(model.item_vocab_))
    indptr = np.asarray(model.seen_indptr_, dtype=np.int64)
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    train = rows * n_items + np.asarray(model.seen_indices_, dtype=np.int64)
    if train.size > 1 and not (train[1:] >= train[:-1]).all():
        train = np.sort(train)
    keys = u[known].astype(np.int64) * n_items + i[known].astype(np.int64)
    pos = np.minimum(np.searchsorted(train, keys), max(train.size - 1, 0))
    return int((train[pos] == keys).sum()) if train.size else 0


def _warnings(model: Any, test: Any, users: np.ndarray, items: np.ndarray, u: np.ndarray,
              i: np.ndarray, overlap: int) -> list[str]:
    notes = []
    n = len(u)
    if overlap:
        notes.append(
            f"{overlap} of {n} test rows ({100 * overlap / n:.1f}%) are (user, item) pairs the "
            "model was trained on, so these scores are not held-out estimates. Evaluate on rows "
            "kept out of training (the test part of the split the model was trained with).")
    for what, ids, idx in (("users", users, u), ("items", items, i)):
        distinct = pd.unique(ids)
        unknown = pd.unique(ids[idx < 0])
        if len(distinct) and len(unknown) / len(distinct) > UNKNOWN_SHARE_WARN:
            notes.append(
                f"{len(unknown)} of {len(distinct)} test {what} are unknown to the model (e.g. "
                f"{_plain(unknown[0])!r}): the bias baseline answers their rows, so these "
                "scores say little about the model itself. Expected when the split holds out "
                "new users or items (e.g. temporal); otherwise check that the test data comes "
                "from the dataset the model was trained on.")
    title_note = _title_mismatch(model, test, items, i)
    if title_note:
        notes.append(title_note)
    return notes


def _title_mismatch(model: Any, test: Any, items: np.ndarray, i: np.ndarray) -> str | None:
    """A note when most known test items carry other titles than in training."""
    meta = getattr(test, "item_meta", None)
    mine = getattr(model, "item_meta_", None)
    if meta is None or mine is None or "title" not in meta.columns or "title" not in mine.columns:
        return None
    shared = pd.unique(items[i >= 0])
    theirs = meta["title"].reindex(shared)
    ours = mine["title"].reindex(shared)
    both = theirs.notna().to_numpy() & ours.notna().to_numpy()
    if both.sum() < 3:
        return None
    a = theirs[both].astype(str).str.strip().str.casefold().to_numpy()
    b = ours[both].astype(str).str.strip().str.casefold().to_numpy()
    differ = a != b
    if differ.sum() * 2 <= both.sum():
        return None
    k = int(np.flatnonzero(differ)[0])
    item = _plain(shared[both][k])
    return (f"{int(differ.sum())} of {int(both.sum())} test items known to the model have other "
            f"titles than in training (item {item!r}: {theirs[both].iloc[k]!r} in the test "
            f"data, {ours[both].iloc[k]!r} in the model): the same ids name other things, so "
            "the scores are meaningless. Evaluate on data from the dataset the model was "
            "trained on.")


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
