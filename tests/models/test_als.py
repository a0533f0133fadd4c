"""BiasedALS: exact normal equations, planted recovery, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import collabkit
from collabkit.errors import ConfigError
from collabkit.metrics.evaluate import evaluate
from collabkit.models import als
from collabkit.models.als import BiasedALS, _blocks, _Side, solve_rows
from collabkit.models.persist import load_model
from collabkit.testing import planted_low_rank


def test_solve_rows_solves_each_rows_normal_equations(monkeypatch):
    """Every row's x solves (Z_r^T Z_r + lam_r I) x = Z_r^T (y_r - o_r), across blocks."""
    monkeypatch.setattr(als, "_BLOCK_CELLS", 8)  # force several padded blocks
    rng = np.random.default_rng(0)
    n_rows, n_other, d = 5, 6, 3
    counts = np.array([1, 4, 2, 6, 3])
    rows = np.repeat(np.arange(n_rows), counts)
    other = np.concatenate([rng.choice(n_other, c, replace=False) for c in counts])
    r = rng.normal(size=rows.size).astype(np.float32).astype(np.float64)  # stored as float32
    perm = rng.permutation(rows.size)  # input order must not matter
    side = _Side(rows[perm], other[perm], r[perm], n_rows, n_other, torch.device("cpu"))
    assert len(side.blocks) > 1
    Z = torch.as_tensor(rng.normal(size=(n_other, d)))
    off = torch.as_tensor(rng.normal(size=n_other))
    lam = torch.as_tensor(rng.uniform(0.1, 1.0, n_rows))
    out = torch.zeros(n_rows, d, dtype=torch.float64)
    solve_rows(side, Z, off, lam, out)
    for j in range(n_rows):
        sel = rows == j
        Zj, tj = Z.numpy()[other[sel]], r[sel] - off.numpy()[other[sel]]
        expect = np.linalg.solve(Zj.T @ Zj + lam[j].item() * np.eye(d), Zj.T @ tj)
        np.testing.assert_allclose(out[j].numpy(), expect, rtol=1e-8, atol=1e-10)


def test_blocks_cover_rows_once_within_budget(monkeypatch):
    monkeypatch.setattr(als, "_BLOCK_CELLS", 50)
    counts = np.array([3, 0, 7, 1, 20, 2, 2, 9])
    blocks = _blocks(counts)
    got = np.sort(np.concatenate(blocks))
    np.testing.assert_array_equal(got, np.flatnonzero(counts))  # rows without data skipped
    for b in blocks:
        assert len(b) == 1 or len(b) * counts[b].max() <= 50


def test_recovers_planted_low_rank_to_noise_floor():
    pl = planted_low_rank(n_users=200, n_items=150, k=3, density=0.3, noise=0.1, seed=4)
    train, test = collabkit.split(pl.data, "random", test_frac=0.1, seed=0)
    m = BiasedALS(n_factors=3, epochs=15, reg=0.05, random_state=0, device="cpu").fit(train)
    floor = float(np.sqrt(np.mean((pl.truth(test.users, test.items) - test.ratings) ** 2)))
    assert evaluate(m, test).rmse < 1.2 * floor
    losses = [h["train_loss"] for h in m.history_]
    assert losses[-1] <= losses[0]


def test_seeded_and_saved_models_agree(tmp_path: Path):
    pl = planted_low_rank(n_users=60, n_items=40, k=2, density=0.3, seed=3)
    a = BiasedALS(n_factors=4, epochs=3, random_state=1, device="cpu").fit(pl.data)
    b = BiasedALS(n_factors=4, epochs=3, random_state=1, device="cpu").fit(pl.data)
    users = pl.data.user_vocab.ids(pl.data.users)
    items = pl.data.item_vocab.ids(pl.data.items)
    np.testing.assert_array_equal(a.predict_ratings(users, items)[0],
                                  b.predict_ratings(users, items)[0])
    a.save(tmp_path / "als")
    back = load_model(tmp_path / "als")
    np.testing.assert_allclose(back.predict_ratings(users, items)[0],
                               a.predict_ratings(users, items)[0], rtol=1e-6)
    top = back.recommend(users[:3], n=5)
    assert (top.groupby("user").size() == 5).all()


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"epochs": 0}, {"reg": 0.0},
                                 {"reg_exponent": 2.0}])
def test_bad_settings_rejected_at_fit(bad):
    pl = planted_low_rank(n_users=20, n_items=10, k=2, density=0.5, seed=0)
    with pytest.raises(ConfigError):
        BiasedALS(**bad).fit(pl.data)


def test_fit_with_valid_reports_validation_rmse_per_sweep():
    """issue 9: BiasedALS.fit(data, valid) accepted valid and ignored it."""
    pl = planted_low_rank(n_users=120, n_items=80, k=3, density=0.3, noise=0.1, seed=2)
    train, valid = collabkit.split(pl.data, "random", test_frac=0.1, seed=0)
    seen = []
    m = BiasedALS(n_factors=3, epochs=4, reg=0.05, random_state=0, device="cpu",
                  callback=seen.append).fit(train, valid)
    rmses = [h["valid_rmse"] for h in m.history_]
    assert all(v is not None and np.isfinite(v) for v in rmses)
    assert [s.valid_rmse for s in seen] == rmses
    assert m.valid_rmse_ == pytest.approx(evaluate(m, valid).rmse, rel=1e-5)
    assert BiasedALS(epochs=2, random_state=0).fit(train).history_[-1]["valid_rmse"] is None


def test_foldin_penalty_is_the_objectives_ridge():
    """issue 9: the model states its own matched penalty (was a kind == "als" branch)."""
    m = BiasedALS(reg=0.7, reg_exponent=0.3)
    pen = m.foldin_penalty("users", np.zeros(4))
    assert (pen.kind, pen.value, pen.power) == ("count", 0.7, 0.3)
