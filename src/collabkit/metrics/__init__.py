"""Evaluation metrics: rating error (:mod:`.rating`), top-N ranking quality (:mod:`.ranking`) and
cold-start leakage of a split (:mod:`.leakage`).

Ranking metrics come per user (``ndcg_at_k``) and in a vectorised batch form over a matrix of
recommendations (``ndcg_batch``); both give the same numbers.
"""

from collabkit.metrics.leakage import ColdReport, split_summary
from collabkit.metrics.ranking import (
    average_precision_at_k,
    average_precision_batch,
    hit_rate_at_k,
    hit_rate_batch,
    ndcg_at_k,
    ndcg_batch,
    precision_at_k,
    precision_batch,
    recall_at_k,
    recall_batch,
)
from collabkit.metrics.rating import mae, rmse

__all__ = [
    "rmse",
    "mae",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "hit_rate_at_k",
    "average_precision_at_k",
    "ndcg_batch",
    "precision_batch",
    "recall_batch",
    "hit_rate_batch",
    "average_precision_batch",
    "ColdReport",
    "split_summary",
]
