"""iALS: normal equations, the checkerboard, fold-in fidelity, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from collabkit.errors import ConfigError
from collabkit.models.implicit import ImplicitALS

from .conftest import assert_top1_is_missing_item


def test_user_rows_solve_the_weighted_normal_equations(checkerboard, dense_x) -> None:
    m = ImplicitALS(n_factors=4, epochs=3, reg=0.05, alpha=2.0, unobserved_weight=0.5,
                    random_state=0, device="cpu").fit(checkerboard)
    Y = m.item_factors_.double().numpy()
    u = 7
    c = np.where(dense_x[u] > 0, 0.5 + 2.0 * dense_x[u], 0.5)  # confidence of every pair
    lam = 0.05 * (dense_x[u].sum() + 0.5 * 10) ** 1.0
    x = np.linalg.solve(Y.T @ (c[:, None] * Y) + lam * np.eye(4), Y.T @ (c * dense_x[u]))
    np.testing.assert_allclose(m.user_factors_[u].double().numpy(), x, atol=1e-4)


def test_checkerboard_top1(checkerboard) -> None:
    assert_top1_is_missing_item(ImplicitALS(n_factors=4, epochs=10, reg=0.01,
                                            random_state=0).fit(checkerboard))


def test_fold_in_reproduces_trained_scores(checkerboard, dense_x) -> None:
    # issue 13: folding a trained user's own interactions back in gives their scores (<= 1e-4)
    m = ImplicitALS(n_factors=6, epochs=5, random_state=0).fit(checkerboard)
    trained = m._score_users(np.arange(20)).numpy()
    for u in (0, 13):
        folded = m.fold_in(np.flatnonzero(dense_x[u]))
        assert np.abs(folded - trained[u]).max() <= 1e-4
    # two factors (the checkerboard's true rank): a new user of block A gets block A's rest
    rec = ImplicitALS(n_factors=2, epochs=5, random_state=0).fit(checkerboard) \
        .recommend_new_user([0, 1, 2], n=2)
    assert set(rec["item"]) == {3, 4} and (rec["tier"] == "personal").all()


def test_same_seed_same_factors(checkerboard) -> None:
    a = ImplicitALS(n_factors=3, epochs=2, random_state=5).fit(checkerboard)
    b = ImplicitALS(n_factors=3, epochs=2, random_state=5).fit(checkerboard)
    assert torch.equal(a.item_factors_, b.item_factors_)


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="no CUDA device"))])
def test_runs_on_device(checkerboard, device) -> None:
    m = ImplicitALS(n_factors=3, epochs=2, random_state=0, device=device).fit(checkerboard)
    assert m.item_factors_.device.type == device


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"reg": 0.0}, {"alpha": -1.0},
                                 {"reg_exponent": 2.0}])
def test_bad_params(checkerboard, bad) -> None:
    with pytest.raises(ConfigError):
        ImplicitALS(**bad).fit(checkerboard)
