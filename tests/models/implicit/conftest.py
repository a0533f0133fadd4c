"""A checkerboard of interactions whose right top-1 is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabkit.data.implicit import read_interactions
from collabkit.data.interactions import Interactions


@pytest.fixture(scope="session")
def checkerboard() -> Interactions:
    """Users 0-9 use items 0-4, users 10-19 items 5-9; user ``u`` lacks one item of its block.

    The only unseen item in a user's own block is ``missing(u) = 5 * (u >= 10) + u % 5``: any
    sensible ranker puts it first.
    """
    rows = [(u, 5 * (u >= 10) + j) for u in range(20) for j in range(5) if j != u % 5]
    return read_interactions(pd.DataFrame(rows, columns=["user", "item"]))


def missing(u: int) -> int:
    return 5 * (u >= 10) + u % 5


def assert_top1_is_missing_item(model: object) -> None:
    rec = model.recommend(list(range(20)), n=1)  # type: ignore[attr-defined]
    assert rec["item"].tolist() == [missing(u) for u in range(20)]
    assert (rec["tier"] == "model").all()


@pytest.fixture(scope="session")
def dense_x(checkerboard: Interactions) -> np.ndarray:
    x = np.zeros((20, 10))
    x[checkerboard.user_vocab.ids(checkerboard.users),
      checkerboard.item_vocab.ids(checkerboard.items)] = 1.0
    return x
