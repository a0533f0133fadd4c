"""Retrain a saved model from new feedback, and decide whether the new model should be served.

The feedback loop of issue 11: visitors rate items, the ratings are stored, and now and then a
model of the same kind and parameters is trained on the old model's own training ratings plus
the feedback. The newest feedback is held out; both models predict it and the new one is
*promoted* only when its RMSE on that slice is not worse.

How each model answers a held-out rating, as the service would:

* a user the model was trained on: :meth:`Recommender.predict` (its trained row);
* a user it never saw, with ``DEFAULT_MIN_PERSONAL`` (5) or more earlier feedback ratings of
  items it knows: fold-in of that earlier feedback (tier ``personal``);
* with 1 to 4 such ratings: the damped-bias prediction ``global_mean_ + b_u + b_i`` (tier
  ``bias``); with none: the model's fallback for an unknown user (``global_mean_ + b_i``).

Items a model never saw get its damped-bias baseline, as everywhere in collabkit.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError, ModelFileError
from collabkit.metrics.rating import rmse

__all__ = ["RetrainReport", "retrain", "training_ratings", "split_feedback", "answer_ratings"]

FEEDBACK_COLUMNS = ("user", "item", "rating")


@dataclass(frozen=True)
class RetrainReport:
    """What :func:`retrain` did and what it measured.

    Attributes
    ----------
    old_model, new_model : str
        The folders read and written.
    kind : str
        The model kind (both models share it and its parameters).
    n_base : int
        The old model's own training ratings.
    n_feedback : int
        Feedback rows after keeping each (user, item)'s newest rating.
    n_feedback_train, n_holdout : int
        How the feedback was divided: trained on, held out (the newest).
    n_replaced : int
        Old training ratings dropped because the feedback rates the same (user, item).
    old_rmse, new_rmse : float
        RMSE of each model on the held-out feedback.
    promote : bool
        ``new_rmse <= old_rmse``: serve the new model.
    fit_seconds : float
        Time spent fitting the new model.
    """

    old_model: str
    new_model: str
    kind: str
    n_base: int
    n_feedback: int
    n_feedback_train: int
    n_holdout: int
    n_replaced: int
    old_rmse: float
    new_rmse: float
    promote: bool
    fit_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


# --------------------------------------------------------------------------- inputs
def training_ratings(model: Any) -> pd.DataFrame:
    """The ratings a fitted model was trained on, from its ``seen`` CSR (raw ids).

    Raises
    ------
    ModelFileError
        The model file predates stored training ratings (``seen_ratings_`` is missing).
    """
    model._check_fitted()
    if getattr(model, "seen_ratings_", None) is None:
        raise ModelFileError("this model file stores which items each user rated but not the "
                             "ratings (saved before collabkit 0.1.0); retrain it from the "
                             "original ratings with `collabkit train`")
    counts = np.diff(model.seen_indptr_)
    users = model.user_vocab_.ids(np.repeat(np.arange(len(counts)), counts))
    items = model.item_vocab_.ids(model.seen_indices_)
    return pd.DataFrame({"user": users, "item": items,
                         "rating": np.asarray(model.seen_ratings_, dtype=np.float64)})


def _clean_feedback(feedback: pd.DataFrame, rating_range: tuple[float, float]) -> pd.DataFrame:
    """Checked feedback, oldest first, one row per (user, item): the newest rating wins."""
    if not isinstance(feedback, pd.DataFrame):
        raise DataError(f"feedback must be a DataFrame with columns user, item, rating and "
                        f"time, got {type(feedback).__name__}")
    missing = [c for c in FEEDBACK_COLUMNS if c not in feedback.columns]
    if missing:
        raise DataError(f"feedback lacks column(s) {missing}; it has {list(feedback.columns)} "
                        "and needs user, item, rating and (optionally) time")
    time_col = next((c for c in ("time", "timestamp") if c in feedback.columns), None)
    df = pd.DataFrame({c: feedback[c].to_numpy() for c in FEEDBACK_COLUMNS})
    df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
    df["time"] = (np.arange(len(df), dtype=np.float64) if time_col is None  # row order
                  else _seconds(feedback[time_col]))
    lo, hi = rating_range
    r = df["rating"].to_numpy(dtype=np.float64)
    checks = [
        (~(np.isfinite(r) & (r >= lo) & (r <= hi)),
         lambda j: f"rating {_py(feedback['rating'].iloc[j])!r} is not a number in the "
                   f"model's rating range [{lo:g}, {hi:g}]; fix or drop the row"),
        (df["user"].isna().to_numpy() | df["item"].isna().to_numpy(),
         lambda j: "the user or item id is empty"),
        (~np.isfinite(df["time"].to_numpy(dtype=np.float64)),
         lambda j: f"{time_col} {_py(feedback[time_col].iloc[j])!r} is not a number or a date"),
    ]
    for bad, say in checks:
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise DataError(f"feedback row {j} (user {_py(df['user'].iloc[j])!r}, item "
                            f"{_py(df['item'].iloc[j])!r}): {say(j)}")
    df = df.iloc[np.lexsort((np.arange(len(df)), df["time"].to_numpy()))]
    df = df.drop_duplicates(["user", "item"], keep="last")
    return df.reset_index(drop=True)


def _seconds(col: pd.Series) -> np.ndarray:
    """Times as float seconds: numbers as they are, datetimes and ISO strings converted."""
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64)
    t = pd.to_datetime(pd.Series(col.to_numpy()), utc=True, errors="coerce", format="ISO8601")
    out = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
    return np.where(t.isna().to_numpy(), np.nan, out)


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def split_feedback(feedback: pd.DataFrame, holdout_frac: float) -> tuple[pd.DataFrame,
                                                                          pd.DataFrame]:
    """(older rows to train on, newest ``holdout_frac`` held out); at least one held out."""
    if not 0.0 < holdout_frac < 1.0:
        raise ConfigError(f"holdout_frac must be between 0 and 1, got {holdout_frac!r}")
    if len(feedback) == 0:
        raise DataError("the feedback is empty: there is nothing to retrain on or to score")
    n_hold = max(1, int(math.ceil(holdout_frac * len(feedback))))
    cut = len(feedback) - n_hold
    return feedback.iloc[:cut].reset_index(drop=True), feedback.iloc[cut:].reset_index(drop=True)


# --------------------------------------------------------------------------- scoring
def _can_fold(model: Any) -> bool:
    """Whether the cold-start chain would fold a new user into ``model``."""
    from collabkit.models.capabilities import can_fold_in

    return bool(can_fold_in(model))


def answer_ratings(model: Any, heldout: pd.DataFrame, context: pd.DataFrame) -> np.ndarray:
    """Predictions for ``heldout`` (user, item) rows as the service would give them.

    ``context`` holds the earlier feedback (user, item, rating) that users the model never saw
    are folded in from (see the module docstring).
    """
    from collabkit.recommend.coldstart import DEFAULT_MIN_PERSONAL
    from collabkit.recommend.foldin import fold_in_users

    users = heldout["user"].to_numpy()
    items = heldout["item"].to_numpy()
    pred, _ = model.predict_ratings(users, items)
    new = model.user_vocab_.index(users) < 0
    if not new.any() or len(context) == 0:
        return pred
    ctx = context[model.item_vocab_.index(context["item"].to_numpy()) >= 0]
    ctx = ctx[ctx["user"].isin(pd.unique(users[new]))]
    n_ctx = ctx.groupby("user", sort=False).size()
    fold_users = n_ctx.index[n_ctx >= DEFAULT_MIN_PERSONAL] if _can_fold(model) else []
    iidx = model.item_vocab_.index(items)
    if len(fold_users):
        folded = fold_in_users(model, ctx[ctx["user"].isin(fold_users)])
        scores = folded.scores()
        row = pd.Series(np.arange(len(folded.users)), index=pd.Index(folded.users))
        hit = new & pd.Series(users).isin(fold_users).to_numpy()
        base = np.array([folded[u].baseline_rating() for u in users[hit]])
        r = row.reindex(users[hit]).to_numpy()
        pred[hit] = np.where(iidx[hit] >= 0, scores[r, np.maximum(iidx[hit], 0)], base)
    bias_users = n_ctx.index[(n_ctx > 0) & ~n_ctx.index.isin(fold_users)]
    if len(bias_users):
        bi_all = model.item_bias_base_
        c = ctx[ctx["user"].isin(bias_users)]
        ci = model.item_vocab_.index(c["item"].to_numpy())
        off = (c["rating"].to_numpy() - model.global_mean_ - bi_all[ci])
        bu = pd.Series(off).groupby(c["user"].to_numpy()).sum() / (
            c.groupby("user").size() + 5.0)
        hit = new & pd.Series(users).isin(bias_users).to_numpy()
        bi = np.where(iidx[hit] >= 0, bi_all[np.maximum(iidx[hit], 0)], 0.0)
        lo, hi = model.rating_range_
        pred[hit] = np.clip(model.global_mean_ + bu.reindex(users[hit]).to_numpy() + bi, lo, hi)
    return pred


# --------------------------------------------------------------------------- retrain
def retrain(model: str | os.PathLike[str] | Any, feedback: pd.DataFrame,
            out: str | os.PathLike[str], *, holdout_frac: float = 0.2) -> RetrainReport:
    """Train a model of the same kind on its own training ratings plus ``feedback``.

    Parameters
    ----------
    model : path or Recommender
        A saved model folder (or a fitted model).
    feedback : DataFrame
        Columns ``user``, ``item``, ``rating`` and ``time`` (or ``timestamp``; numbers or
        datetimes). Without a time column the row order is the time order. A (user, item)
        rated more than once keeps its newest rating, which also replaces the old model's
        training rating of that pair.
    out : path
        A new folder for the new model; an existing path is refused, never replaced.
    holdout_frac : float
        Share of the feedback, the newest, held out to compare the models (at least one row).
        Held-out (user, item) pairs are dropped from the new model's training rows entirely.

    Returns
    -------
    RetrainReport
        Both RMSEs and the ``promote`` decision. The new model is saved either way; serving
        it is the caller's decision.

    Raises
    ------
    ConfigError
        ``out`` exists, or ``holdout_frac`` is outside (0, 1).
    DataError
        The feedback lacks a column or has a rating outside the model's range (the message
        names the row).
    ModelFileError
        The model folder is unreadable or does not store its training ratings.
    """
    from collabkit.models.persist import load_model

    target = Path(out)
    if target.exists():
        raise ConfigError(f"out {str(target)!r} already exists; retrain writes a new model "
                          "folder and never replaces one, so choose a path that does not exist")
    old_path = "<in memory>"
    if isinstance(model, str | os.PathLike):
        old_path = str(model)
        model = load_model(model)
    base = training_ratings(model)
    fb = _clean_feedback(feedback, model.rating_range_)
    train_fb, heldout = split_feedback(fb, holdout_frac)
    pair = pd.MultiIndex.from_frame(base[["user", "item"]])
    drop = pair.isin(pd.MultiIndex.from_frame(fb[["user", "item"]]))
    rows = pd.concat([base[~drop], train_fb[["user", "item", "rating"]]], ignore_index=True)
    data = Interactions.from_dataframe(rows, rating_range=model.rating_range_,
                                       item_meta=model.item_meta_, name="retrain")
    params = {k: v for k, v in model.get_params().items() if k != "callback"}
    t0 = time.perf_counter()
    new = type(model)(**params).fit(data)
    fit_seconds = time.perf_counter() - t0
    y = heldout["rating"].to_numpy(dtype=np.float64)
    old_rmse = rmse(y, answer_ratings(model, heldout, train_fb))
    new_rmse = rmse(y, answer_ratings(new, heldout, train_fb))
    saved = new.save(str(target))
    return RetrainReport(
        old_model=old_path, new_model=saved, kind=model.kind, n_base=len(base),
        n_feedback=len(fb), n_feedback_train=len(train_fb), n_holdout=len(heldout),
        n_replaced=int(drop.sum()), old_rmse=old_rmse, new_rmse=new_rmse,
        promote=bool(new_rmse <= old_rmse), fit_seconds=fit_seconds)
