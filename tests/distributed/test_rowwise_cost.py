"""The row-wise tier's predicted traffic (issue 15, part 2): within 10 % of the bytes the
instrumented all-to-alls counted on the 2- and 4-rank test runs, and none for one rank."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from collabkit.distributed.rowwise_cost import rowwise_bytes_per_epoch
from collabkit.testing.ranks import _planted_split

from .conftest import ROWWISE


@pytest.mark.parametrize("size", [2, 4])
def test_predicted_bytes_match_the_counted_ones(suite: Callable[[int], dict[str, Any]],
                                                size: int) -> None:
    train, _ = _planted_split({})
    counts = np.bincount(train.items, minlength=len(train.item_vocab))
    per_epoch = rowwise_bytes_per_epoch(counts, ROWWISE["batch_size"], size,
                                        ROWWISE["n_factors"])
    counted = [r["rowwise-sgd"]["bytes_moved"] for r in suite(size)["ranks"]]
    mean = float(np.mean(counted)) / ROWWISE["epochs"]
    assert per_epoch == pytest.approx(mean, rel=0.10)


def test_one_rank_sends_nothing() -> None:
    assert rowwise_bytes_per_epoch(np.array([5, 3, 2]), 4, 1, 8) == 0.0


def test_the_planner_prices_the_rowwise_tier_by_distinct_items_when_counts_are_known() -> None:
    """issue 15: with item counts, the planner's row-wise bytes per epoch equal part 2's
    deduplicated prediction (which tests above hold within 10 % of the counted bytes)."""
    import numpy as np

    from collabkit.distributed import cost
    from collabkit.distributed.rowwise_cost import (
        distinct_items_per_step,
        rowwise_bytes_per_epoch,
    )

    counts = np.random.default_rng(0).zipf(1.6, 500).clip(max=5000)
    n, batch, k = int(counts.sum()), 1024, 16
    for world in (2, 4):
        p = cost.Problem(n, 300, len(counts), k, world=world, batch_size=batch,
                         distinct_items_per_step=distinct_items_per_step(counts, batch, world))
        planned = cost.estimate("rowwise", p).wire_per_epoch
        expected = rowwise_bytes_per_epoch(counts, batch, world, k)
        assert abs(planned - expected) <= 0.01 * expected + (8 + 8 * (k + 1)) * p.steps_per_epoch
        naive = cost.estimate("rowwise", cost.Problem(n, 300, len(counts), k, world=world,
                                                     batch_size=batch)).wire_per_epoch
        assert planned < naive  # repeated items in a batch are fetched once
