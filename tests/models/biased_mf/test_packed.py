"""The packed hand-written-gradient trainer (models/biased_mf/_packed.py), on known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from collabkit.errors import ModelFitError
from collabkit.models.biased_mf._module import DotProductBias
from collabkit.models.biased_mf._packed import (
    auto_batch_size,
    mf_batch_grad,
    pack_tables,
    packed_predict,
    row_penalty_weights,
    unpack_tables,
)
from collabkit.models.biased_mf._trainer import fit_biased_mf
from collabkit.train.optim import PackedAdam as _Adam
from collabkit.train.schedule import one_cycle_lr


def _module(nu: int = 7, ni: int = 5, k: int = 3, y_range=(0.0, 5.5), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    m = DotProductBias(nu, ni, k, y_range, global_bias=0.3)
    with torch.no_grad():
        for t in (m.user_factors, m.item_factors, m.user_bias, m.item_bias):
            t.weight.normal_(0.0, 0.5, generator=g)
    return m


@pytest.mark.parametrize("y_range", [(0.0, 5.5), None])
def test_manual_gradient_equals_autograd(y_range):
    """G from mf_batch_grad == d/dW of the documented batch loss (repeated rows included)."""
    m = _module(y_range=y_range)
    nu, k = 7, 3
    W = pack_tables(m).double()
    rows = torch.tensor([[0, nu + 1], [3, nu + 4], [0, nu + 1], [6, nu + 0], [3, nu + 2]])
    y = torch.tensor([4.0, 1.0, 5.0, 3.0, 2.5], dtype=torch.float64)
    coef = torch.rand(W.shape[0], generator=torch.Generator().manual_seed(1),
                      dtype=torch.float64) * 0.3
    G = torch.empty_like(W)
    sq = mf_batch_grad(W, rows, y, G, n_users=nu, coef=coef, y_range=y_range, global_bias=0.3)

    Wa = W.clone().requires_grad_(True)
    free = torch.ones_like(W)
    free[:nu, k + 1] = 0.0  # the constant 1 columns are not parameters
    free[nu:, k] = 0.0
    E = Wa[rows]  # (B, 2, K)
    x = (E[:, 0] * E[:, 1]).sum(-1) + 0.3
    pred = x if y_range is None else torch.sigmoid(x) * (y_range[1] - y_range[0]) + y_range[0]
    theta = (Wa * free)[rows]
    pen = (coef[rows] * (theta**2).sum(-1)).sum()
    loss = ((pred - y) ** 2).mean() + pen / rows.shape[0]
    loss.backward()
    torch.testing.assert_close(G, Wa.grad * free)
    assert float(sq) == pytest.approx(float(((pred.detach() - y) ** 2).sum()))


def test_pack_unpack_roundtrip_and_prediction_matches_module():
    m = _module()
    W = pack_tables(m)
    assert torch.all(W[:7, 4] == 1) and torch.all(W[7:, 3] == 1)
    u, i = torch.tensor([0, 3, 6]), torch.tensor([1, 4, 0])
    pred = packed_predict(W, torch.stack([u, i + 7], 1), y_range=m.y_range, global_bias=0.3)
    torch.testing.assert_close(pred, m(u, i).detach())
    m2 = _module(seed=5)
    unpack_tables(W, m2)
    for a, b in zip(m.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_fused_adam_matches_the_written_update():
    W = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    fused, plain = _Adam(W.clone(), (0.9, 0.99), 1e-8), _Adam(W.clone(), (0.9, 0.99), 1e-8)
    plain.fused = False
    for step in range(3):
        G = torch.randn(6, 4, generator=torch.Generator().manual_seed(step + 1))
        fused.step(G, 1e-2)
        plain.step(G, 1e-2)
    torch.testing.assert_close(fused.W, plain.W, rtol=1e-5, atol=1e-6)


def test_one_cycle_lr_matches_fastai_shape():
    total = 101
    assert one_cycle_lr(0, total, 1.0) == pytest.approx(1 / 25)
    assert one_cycle_lr(25, total, 1.0) == pytest.approx(1.0)
    assert one_cycle_lr(100, total, 1.0) == pytest.approx(1e-4)
    lrs = [one_cycle_lr(s, total, 1.0) for s in range(total)]
    assert np.all(np.diff(lrs[:26]) > 0) and np.all(np.diff(lrs[25:]) < 0)


@pytest.mark.parametrize("n, expect_b, expect_lr", [
    (72_000, 1024, 0.01),                # MovieLens 100k u1: unchanged
    (900_000, 16384, 0.01 * 16 ** (1 / 3)),  # 1M ratings: 16x batch, lr x 16**(1/3)
    (10_800, 256, 0.01),                 # 12k planted ratings: smaller batch, same lr
    (100, 32, 0.01),                     # never below 32 rows
])
def test_auto_batch_size(n, expect_b, expect_lr):
    b, lr = auto_batch_size(n, 1024, 0.01)
    assert b == expect_b and lr == pytest.approx(expect_lr)


def test_row_penalty_weights():
    pairs = torch.tensor([[0, 2], [0, 3], [0, 2], [1, 2]])  # 2 users, 2 items (rows 2, 3)
    w = row_penalty_weights(pairs, 2, 2, 0.5)
    # mean count 2 for both sides; user 0 has 3 rows, user 1 one; item 2 three, item 3 one
    torch.testing.assert_close(w, torch.tensor([2 / 3, 2.0, 2 / 3, 2.0]) ** 0.5)
    assert torch.all(row_penalty_weights(pairs, 2, 2, 0.0) == 1)


def _toy(n_users=40, n_items=30, n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, n_users, (n,), generator=g)
    i = torch.randint(0, n_items, (n,), generator=g)
    y = torch.randint(1, 6, (n,), generator=g).float()
    return u, i, y


def test_seeded_runs_are_identical():
    u, i, y = _toy()
    out = []
    for _ in range(2):
        m = _module(40, 30, 4)
        res = fit_biased_mf(m, u, i, y, epochs=2, lr_max=1e-2, wd=0.1, batch_size=64,
                            generator=torch.Generator().manual_seed(3), valid=(u, i, y))
        out.append((m.user_factors.weight.detach().clone(), res.history[-1].valid_rmse))
    torch.testing.assert_close(out[0][0], out[1][0], rtol=0, atol=0)
    assert out[0][1] == out[1][1]


def test_training_lowers_the_loss_and_fills_history():
    u, i, y = _toy()
    m = _module(40, 30, 4)
    seen = []
    res = fit_biased_mf(m, u, i, y, epochs=4, lr_max=3e-2, wd=0.01, batch_size=64,
                        generator=torch.Generator().manual_seed(0), callback=seen.append)
    losses = [h.train_loss for h in res.history]
    assert len(seen) == 4 and losses[-1] < losses[0]
    assert res.history[-1].lr == pytest.approx(3e-2 / 1e4)


def test_divergence_raises_model_fit_error_with_remedy():
    u, i, y = _toy()
    y[5] = float("nan")
    with pytest.raises(ModelFitError, match="Lower the learning rate"):
        fit_biased_mf(_module(40, 30, 4), u, i, y, epochs=1, lr_max=1e-2, wd=0.1,
                      batch_size=64, generator=torch.Generator().manual_seed(0))


def test_planted_factors_are_recovered_to_the_noise_floor():
    """Exact low-rank ratings (no sigmoid): test RMSE within 20 % of the noise level."""
    from collabkit.testing import planted_low_rank

    pl = planted_low_rank(n_users=200, n_items=150, k=3, density=0.3, noise=0.1, seed=4)
    d = pl.data
    rng = np.random.default_rng(0)
    test = rng.random(len(d)) < 0.1
    uu, ii = torch.as_tensor(d.users), torch.as_tensor(d.items)
    y = torch.tensor(d.ratings) - pl.mean
    m = DotProductBias(d.n_users, d.n_items, 3, None, init_std=0.1)
    tr = torch.as_tensor(~test)
    fit_biased_mf(m, uu[tr], ii[tr], y[tr], epochs=30, lr_max=3e-2, wd=1e-3, batch_size=256,
                  generator=torch.Generator().manual_seed(0))
    te = torch.as_tensor(test)
    rmse = math.sqrt(float(((m(uu[te], ii[te]).detach() - y[te]) ** 2).mean()))
    assert rmse < 1.2 * pl.noise, rmse
