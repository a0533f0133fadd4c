"""BPR with its numba kernel: the checkerboard, the pairwise objective, fold-in."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.errors import ConfigError
from collabkit.models.implicit import BPR

from .conftest import assert_top1_is_missing_item


@pytest.fixture(scope="module")
def fitted(checkerboard):
    return BPR(n_factors=4, epochs=200, lr=0.05, reg=1e-3, random_state=0).fit(checkerboard)


def test_checkerboard_top1(fitted) -> None:
    assert_top1_is_missing_item(fitted)


def test_log_likelihood_rises(fitted) -> None:
    ll = [h["log_likelihood"] for h in fitted.history_]
    assert ll[-1] > ll[0] and ll[0] < -0.6  # starts near ln(1/2), ends well above it


def test_fold_in_ranks_the_users_block(fitted) -> None:
    rec = fitted.recommend_new_user([5, 6, 7], n=2)
    assert set(rec["item"]) == {8, 9} and (rec["tier"] == "personal").all()


def test_same_seed_same_model(checkerboard) -> None:
    a = BPR(n_factors=3, epochs=3, random_state=4).fit(checkerboard)
    b = BPR(n_factors=3, epochs=3, random_state=4).fit(checkerboard)
    np.testing.assert_array_equal(a.item_factors_.numpy(), b.item_factors_.numpy())


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"lr": 0.0}, {"reg": -1.0}])
def test_bad_params(checkerboard, bad) -> None:
    with pytest.raises(ConfigError):
        BPR(**bad).fit(checkerboard)


def test_without_numba_fit_and_fold_in_say_so(fitted, checkerboard, monkeypatch) -> None:
    """issue 9: the kernel is typed ``Callable | None``; both of its callers go through
    ``_kernel()``, which names numba (fold-in used to fail with "'NoneType' is not callable")."""
    from collabkit.models.implicit import bpr

    monkeypatch.setattr(bpr, "_epoch", None)
    with pytest.raises(ConfigError, match="BPR needs numba"):
        BPR(n_factors=2, epochs=1).fit(checkerboard)
    with pytest.raises(ConfigError, match="BPR needs numba"):
        fitted.recommend_new_user([5, 6, 7], n=2)
