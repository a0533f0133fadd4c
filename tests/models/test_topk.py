"""``top_order`` equals a full sort by (-score, index) over the finite scores (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.models._topk import top_order


def _full_sort(scores: np.ndarray, n: int) -> np.ndarray:
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[np.isfinite(scores[order])][:n]


def test_known_answer_with_ties_and_non_finite() -> None:
    scores = np.array([1.0, 3.0, np.nan, 3.0, -np.inf, 2.0, np.inf, 3.0, 0.0])
    assert top_order(scores, 4).tolist() == [1, 3, 7, 5]
    assert top_order(scores, 100).tolist() == [1, 3, 7, 5, 0, 8]


@pytest.mark.parametrize("seed", range(40))
def test_matches_a_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 3000))
    scores = rng.integers(0, int(rng.integers(1, 50)), size).astype(np.float64)  # many ties
    scores[rng.random(size) < 0.1] = -np.inf
    scores[rng.random(size) < 0.02] = np.nan
    scores[rng.random(size) < 0.05] = -0.0
    for n in (1, 5, 10, 100, size, size + 3):
        assert np.array_equal(top_order(scores, n), _full_sort(scores, n)), (seed, n)
