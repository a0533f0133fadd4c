"""Score a model on held-out rows, always beside the two baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.metrics.rating import mae, rmse

__all__ = ["EvalReport", "evaluate"]


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
    """

    table: pd.DataFrame
    n: int
    n_fallback: int
    n_unknown_users: int
    n_unknown_items: int

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
        }


def evaluate(model, test: Interactions | pd.DataFrame, *, name: str | None = None) -> EvalReport:
    """RMSE and MAE of ``model`` on ``test``, with the global-mean and damped-bias baselines.

    Both baselines come from the model's own training rows (stored in the model), so a saved
    model is scored against the same baselines without its training data. Held-out users or
    items the model never saw are answered by the bias baseline and counted in
    ``n_fallback``.
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
    return EvalReport(table=table, n=int(len(y)), n_fallback=int(fb.sum()),
                      n_unknown_users=int(np.unique(users[u < 0]).size),
                      n_unknown_items=int(np.unique(items[i < 0]).size))
