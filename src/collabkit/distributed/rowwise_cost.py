r"""Bytes the row-wise tier sends between ranks, predicted from item counts (issue 15).

For the planner (:mod:`collabkit.distributed.cost`, part 1). In each global batch of
:math:`B` ratings, a rank holds about :math:`b = N / (n_B \cdot W)` of them (:math:`N` ratings,
:math:`n_B = \lceil N / B \rceil` batches, :math:`W` ranks) and asks for their *distinct*
items; with item :math:`j` drawn with probability :math:`p_j` (its share of the ratings), the
expected number of distinct items is :math:`D = \sum_j 1 - (1 - p_j)^{b}`. Item ids are
permuted, so a share :math:`(W-1)/W` of them live on other ranks. Per remote item a rank sends
its 8-byte id and the gradient row, and serves as many rows to others (by symmetry), so

.. math::

    \text{bytes per rank per epoch} = n_B \, D \, \frac{W-1}{W} \, (8 + 2 \cdot 4 (k+1))

Checked against the counted bytes (``RowwiseState.bytes_moved``): 400k generated ratings with
Zipf-skewed items, k = 32, batch 8192: predicted / counted 1.002 at 2 ranks, 0.998 at 4
(``benchmarks/rowwise_speed.py``); ``tests/distributed/test_rowwise_cost.py`` holds it
within 10 % on the test runs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rowwise_bytes_per_epoch", "distinct_items_per_step"]


def distinct_items_per_step(item_counts: np.ndarray, batch_size: int,
                            world_size: int) -> float:
    """Expected distinct items in one rank's part of a global batch (:math:`D` above)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    n = float(counts.sum())
    if n == 0:
        return 0.0
    b = n / (max(1, math.ceil(n / batch_size)) * max(1, world_size))
    return float((1.0 - (1.0 - counts / n) ** b).sum())


def rowwise_bytes_per_epoch(item_counts: np.ndarray, batch_size: int, world_size: int,
                            n_factors: int, itemsize: int = 4) -> float:
    """Expected bytes one rank sends to the others in one epoch of the row-wise tier."""
    counts = np.asarray(item_counts, dtype=np.float64)
    n = float(counts.sum())
    if world_size <= 1 or n == 0:
        return 0.0
    n_batches = max(1, math.ceil(n / batch_size))
    b = n / (n_batches * world_size)
    distinct = float((1.0 - (1.0 - counts / n) ** b).sum())
    per_item = 8 + 2 * itemsize * (n_factors + 1)
    return n_batches * distinct * (world_size - 1) / world_size * per_item
