"""The one epoch runner (train/runner.py): history rows, the finite-loss error, callbacks."""

from __future__ import annotations

import math

import pytest

from collabkit.errors import ModelFitError
from collabkit.train.runner import EpochOutcome, EpochStats, run_epochs


def test_records_one_row_per_recorded_epoch_and_calls_back() -> None:
    seen: list[EpochStats] = []
    losses = [4.0, 1.0, 0.25]
    result = run_epochs(lambda e: EpochOutcome(losses[e], 0.5 * e, 0.01 * e,
                                               record=e != 1),
                        3, remedy="-", callback=seen.append)
    assert [h.epoch for h in result.history] == [1, 3]  # epoch 2 not recorded
    assert [h.train_loss for h in result.history] == [4.0, 0.25]
    assert result.history[1].valid_rmse == 1.0 and result.history[1].lr == 0.02
    assert result.history[1].train_rmse == 0.5
    assert seen == result.history
    assert all(h.seconds >= 0 for h in result.history) and result.fit_seconds >= 0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_is_refused_with_the_models_remedy(bad: float) -> None:
    with pytest.raises(ModelFitError, match=r"in sweep 2; the model diverged\. raise reg"):
        run_epochs(lambda e: EpochOutcome(1.0 if e == 0 else bad), 3, remedy="raise reg",
                   what="sweep")


def test_epochstats_field_order_is_the_old_positional_one() -> None:
    """Callers build EpochStats(epoch, train_loss, valid_rmse, lr, seconds) positionally."""
    s = EpochStats(2, 0.64, None, 0.001, 0.1)
    assert (s.epoch, s.train_loss, s.valid_rmse, s.lr, s.seconds) == (2, 0.64, None, 0.001, 0.1)
    assert s.noise_precision is None
