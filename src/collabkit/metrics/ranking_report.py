"""Full-ranking scores of a ranker with the baselines beside it (issue 13).

:func:`evaluate_implicit` scores a fitted implicit-feedback model on held-out interactions
(:func:`collabkit.metrics.fullrank.evaluate_ranking`) and, on the same test users, the two
baselines every implicit score is printed beside: popularity and item-kNN, each fitted to the
model's own training interactions (which every model keeps, so a saved model is enough).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.metrics.fullrank import RankingResult, evaluate_ranking
from collabkit.models.base import Recommender

__all__ = ["RankingReport", "evaluate_implicit", "training_rows", "is_ranker",
           "REPORT_METRICS"]

#: the columns of :attr:`RankingReport.table`, at k where the name says so
REPORT_METRICS = ("recall", "ndcg", "hit_rate", "map", "mrr", "coverage", "mean_popularity")


def is_ranker(model: Any) -> bool:
    """Whether ``model`` (an instance or class) ranks implicit feedback."""
    from collabkit.models.implicit import ImplicitRecommender

    cls = model if isinstance(model, type) else type(model)
    return issubclass(cls, ImplicitRecommender)


@dataclass
class RankingReport:
    """Full-ranking metrics of a ranker and its baselines on the same test users.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scorer (the model's kind first, then ``popularity`` and ``itemknn``) and
        the columns of :data:`REPORT_METRICS`.
    k : int
        The cut-off.
    n_users, n_test, skipped_users : int
        Test users scored, their (user, item) test pairs, and test users the model never saw
        (not scored).
    results : list of RankingResult
        The per-scorer results.
    """

    table: pd.DataFrame
    k: int
    n_users: int
    n_test: int
    skipped_users: int
    results: list[RankingResult]

    def metric(self, name: str) -> float:
        """The model's ``name`` (``"ndcg"``, ``"recall"``, ...)."""
        return float(self.table[name].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the model's metrics at k, the baselines', and the counts."""
        def named(row: pd.Series) -> dict[str, float]:
            return {(f"{m}@{self.k}" if m not in ("coverage", "mean_popularity") else m):
                    float(row[m]) for m in REPORT_METRICS if m in row.index}

        rows = list(self.table.iterrows())
        return {"protocol": "full ranking", "k": self.k, **named(rows[0][1]),
                "n_users": self.n_users, "n_test": self.n_test,
                "skipped_users": self.skipped_users,
                "baselines": {str(name): named(row) for name, row in rows[1:]}}


def training_rows(model: Recommender) -> Interactions:
    """The interactions ``model`` was fitted to, rebuilt from the seen lists it stores."""
    model._check_fitted()
    counts = np.diff(model.seen_indptr_)
    users = np.repeat(np.arange(len(model.user_vocab_), dtype=np.int64), counts)
    items = np.asarray(model.seen_indices_, dtype=np.int64)
    w = (np.ones(len(items), np.float32) if model.seen_ratings_ is None
         else np.asarray(model.seen_ratings_, dtype=np.float32))
    return Interactions(users=users, items=items, ratings=w, user_vocab=model.user_vocab_,
                        item_vocab=model.item_vocab_, item_meta=model.item_meta_,
                        rating_range=(float(w.min(initial=1.0)), float(w.max(initial=1.0))),
                        name="training rows", implicit=True)


def _warn_overlap(model: Recommender, test: Interactions) -> None:
    """Warn when held-out pairs are among the model's training interactions: full ranking
    leaves a user's training items out, so those pairs can never be found."""
    import warnings

    from collabkit.errors import DataWarning

    u = model.user_vocab_.index(test.user_vocab.ids(test.users))
    i = model.item_vocab_.index(test.item_vocab.ids(test.items))
    ok = (u >= 0) & (i >= 0)
    if not ok.any():
        return
    n_items = len(model.item_vocab_)
    counts = np.diff(model.seen_indptr_)
    seen = np.repeat(np.arange(len(counts), dtype=np.int64), counts) * n_items + \
        np.asarray(model.seen_indices_, dtype=np.int64)
    overlap = int(np.isin(u[ok] * n_items + i[ok], seen).sum())
    if overlap:
        warnings.warn(f"{overlap:,} of {len(test):,} held-out interactions are among the "
                      "model's training interactions; full ranking leaves those out, so they "
                      "count as misses. Score a model fitted without them "
                      "(split before fitting)", DataWarning, stacklevel=3)


def evaluate_implicit(model: Recommender, test: Interactions, k: int = 20, *,
                      baselines: bool = True, block: int = 2048) -> RankingReport:
    """Full-ranking Recall/NDCG/HR/MAP/MRR@k, coverage and mean popularity of ``model`` on
    ``test``, with popularity and item-kNN (fitted to the model's training rows) beside it.

    Raises
    ------
    ConfigError
        ``model`` is a rating model (score it with :func:`collabkit.evaluate`'s RMSE).
    DataError
        No test user is known to the model.
    """
    if not is_ranker(model):
        raise ConfigError(f"model {getattr(model, 'kind', type(model).__name__)!r} predicts "
                          "ratings; full-ranking evaluation is for implicit-feedback models")
    _warn_overlap(model, test)
    results = [evaluate_ranking(model, test, k, block=block)]
    if baselines:
        from collabkit.models.implicit import ItemKNN, Popularity

        rows = training_rows(model)
        for base in (Popularity(), ItemKNN()):
            if base.kind != model.kind:
                results.append(evaluate_ranking(base.fit(rows), test, k, block=block))
    table = pd.DataFrame([{m: r.metrics.get(m, np.nan) for m in REPORT_METRICS}
                          for r in results], index=[r.model for r in results])
    first = results[0]
    return RankingReport(table=table, k=first.k, n_users=first.n_users, n_test=first.n_test,
                         skipped_users=first.skipped_users, results=results)
