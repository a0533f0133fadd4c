"""Issue 14: the shared strength search and candidates (models/_safety.py), known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from collabkit.models._safety import search_strength, strength_candidates
from collabkit.train.runner import EpochStats, TrainResult


def _searcher(valid_by_strength: dict[float, float]):  # type: ignore[no-untyped-def]
    """A module whose one parameter records the strength trained; fixed validation RMSEs."""
    module = torch.nn.Linear(1, 1, bias=False)
    calls: list[tuple[float, bool]] = []
    restarts: list[int] = []

    def train_once(strength: float, first: bool) -> TrainResult:
        calls.append((strength, first))
        with torch.no_grad():
            module.weight.fill_(strength)
        stats = EpochStats(1, 1.0, valid_by_strength[strength], 0.0, 0.5)
        return TrainResult([stats], fit_seconds=0.5)

    def restart() -> torch.nn.Module:
        restarts.append(1)
        with torch.no_grad():
            module.weight.zero_()
        return module

    return module, calls, restarts, train_once, restart


def test_issue14_search_stops_at_the_first_strength_that_does_not_improve() -> None:
    module, calls, restarts, train_once, restart = _searcher(
        {1.0: 0.9, 3.0: 0.8, 9.0: 0.85, 27.0: 0.1})
    found = search_strength([1.0, 3.0, 9.0, 27.0], train_once, restart, lambda: module)
    assert calls == [(1.0, True), (3.0, False), (9.0, False)]  # 27 never tried
    assert len(restarts) == 2
    assert found.value == 3.0 and found.tried == [[1.0, 0.9], [3.0, 0.8], [9.0, 0.85]]
    assert float(module.weight.detach()) == 3.0  # the kept candidate's parameters are put back
    assert found.result.fit_seconds == pytest.approx(1.5)  # every run's seconds
    assert found.result.history[0].valid_rmse == 0.8


def test_issue14_a_non_finite_validation_rmse_is_recorded_as_none_and_never_kept() -> None:
    module, _, _, train_once, _ = _searcher({1.0: float("nan"), 3.0: 0.7, 9.0: 0.9})
    found = search_strength([1.0, 3.0, 9.0], train_once, None, lambda: module)
    assert found.tried == [[1.0, None], [3.0, 0.7], [9.0, 0.9]] and found.value == 3.0


def test_issue14_candidates_follow_the_rating_variance() -> None:
    r = np.random.default_rng(0).normal(3.5, 1.25**0.5, 200_000)
    assert strength_candidates(r) == pytest.approx([0.1, 0.3, 0.9, 2.7], rel=0.02)
    assert strength_candidates(np.full(10, 4.0)) == pytest.approx([0.1, 0.3, 0.9, 2.7])
    # BiasedMF's wd follows the variance (10x wider ratings: 100x), SVD++'s reg the sd (10x)
    assert strength_candidates(10 * r) == pytest.approx([100 * c for c in strength_candidates(r)])
    assert strength_candidates(10 * r, 0.5) == pytest.approx(
        [10 * c for c in strength_candidates(r, 0.5)])
