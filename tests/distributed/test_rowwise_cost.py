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
