"""The closed-form row solver shared by fold-in and BiasedMF's user pass: known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from collabkit.train.rowsolve import (
    FrozenSide,
    RowPenalty,
    padded_blocks,
    population_prior,
    solve_rows_gn,
    train_noise_variance,
)


def _problem(seed: int, n_rows: int = 30, n_other: int = 40, k: int = 3, y_range=(0.0, 5.5)):
    rng = np.random.default_rng(seed)
    Q = rng.normal(0, 0.5, (n_other, k))
    b = rng.normal(0, 0.3, n_other)
    counts = rng.integers(0, 12, n_rows)
    counts[0] = 0  # one row without ratings
    indptr = np.concatenate([[0], np.cumsum(counts)])
    other = np.concatenate([rng.choice(n_other, c, replace=False) for c in counts])
    values = rng.uniform(1, 5, len(other))
    side = FrozenSide(torch.as_tensor(Q), torch.as_tensor(b), 0.4, y_range)
    return side, indptr, other, values


def _objective_grad(side: FrozenSide, x: np.ndarray, other: np.ndarray, r: np.ndarray,
                    Lam: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gradient of 1/2 sum (r - rhat)^2 + 1/2 (x - m)' Lam (x - m) at x."""
    A = np.column_stack([side.factors.numpy()[other], np.ones(len(other))])
    s = A @ x + side.bias.numpy()[other] + side.global_bias
    if side.y_range is None:
        resid, slope = r - s, np.ones_like(s)
    else:
        lo, hi = side.y_range
        p = 1 / (1 + np.exp(-s))
        resid, slope = r - (lo + (hi - lo) * p), (hi - lo) * p * (1 - p)
    return -(A * slope[:, None]).T @ resid + Lam @ (x - m)


@pytest.mark.parametrize("y_range", [None, (0.0, 5.5)])
@pytest.mark.parametrize("kind", ["ridge", "count", "population"])
def test_solution_is_a_stationary_point_of_the_objective(y_range, kind):
    side, indptr, other, values = _problem(0, y_range=y_range)
    K = side.factors.shape[1] + 1
    rng = np.random.default_rng(1)
    m = rng.normal(0, 0.1, K)
    M = rng.normal(0, 1, (K, K))
    pen = {"ridge": RowPenalty("ridge", 0.7, m),
           "count": RowPenalty("count", 0.3, m, power=0.5),
           "population": RowPenalty("population", 0.0, m, M @ M.T + np.eye(K))}[kind]
    X = solve_rows_gn(side, indptr, other, values, pen, n_iter=8).numpy()
    for u in range(len(indptr) - 1):
        sl = slice(indptr[u], indptr[u + 1])
        n = indptr[u + 1] - indptr[u]
        if n == 0:
            np.testing.assert_allclose(X[u], m)  # no ratings: the centre
            continue
        Lam = {"ridge": 0.7 * np.eye(K), "count": 0.3 * np.sqrt(n) * np.eye(K),
               "population": pen.matrix}[kind] + 1e-6 * np.eye(K)
        g = _objective_grad(side, X[u], other[sl], values[sl], Lam, m)
        assert np.abs(g).max() < 1e-4, (u, g)  # Gauss-Newton: linear convergence


def test_linear_start_is_the_ridge_solution():
    side, indptr, other, values = _problem(2, y_range=None)
    X = solve_rows_gn(side, indptr, other, values, RowPenalty("ridge", 0.5, np.zeros(4)),
                      n_iter=0).numpy()
    u = int(np.argmax(np.diff(indptr)))
    sl = slice(indptr[u], indptr[u + 1])
    A = np.column_stack([side.factors.numpy()[other[sl]], np.ones(sl.stop - sl.start)])
    z = values[sl] - side.bias.numpy()[other[sl]] - side.global_bias
    expect = np.linalg.solve(A.T @ A + (0.5 + 1e-6) * np.eye(4), A.T @ z)
    np.testing.assert_allclose(X[u], expect, rtol=1e-10, atol=1e-12)


def test_float32_agrees_with_float64_and_blocks_do_not_matter():
    side, indptr, other, values = _problem(3)
    pen = RowPenalty("ridge", 1.0, np.zeros(4))
    ref = solve_rows_gn(side, indptr, other, values, pen).numpy()
    f32 = solve_rows_gn(side, indptr, other, values, pen, dtype=torch.float32).numpy()
    tiny = solve_rows_gn(side, indptr, other, values, pen, cells=7).numpy()
    np.testing.assert_allclose(f32, ref, atol=1e-4)
    np.testing.assert_allclose(tiny, ref, atol=1e-10)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.integers(1, 100))
def test_padded_blocks_cover_rows_with_ratings_once(counts, cells):
    counts = np.array(counts)
    blocks = padded_blocks(counts, cells)
    got = np.sort(np.concatenate(blocks)) if blocks else np.array([], dtype=np.int64)
    np.testing.assert_array_equal(got, np.flatnonzero(counts))
    for b in blocks:  # a block is within budget, or a single row
        assert len(b) == 1 or len(b) * counts[b].max() <= cells


def test_population_prior_and_noise_variance():
    rows = np.random.default_rng(0).normal(2.0, 0.5, (5000, 3))
    mean, precision = population_prior(rows)
    np.testing.assert_allclose(mean, 2.0, atol=0.03)
    np.testing.assert_allclose(precision, 4.0 * np.eye(3), atol=0.3)
    assert train_noise_variance([{"train_loss": 0.8}]) == 0.8
    assert train_noise_variance([]) == 1.0
    assert train_noise_variance([{"train_loss": float("nan")}]) == 1.0


def test_one_centre_per_row_is_honoured():
    """issue 9 (SVDpp's matched penalty centres each user at z_u): a (rows, K) centre."""
    rng = np.random.default_rng(5)
    n_rows, n_other, k = 4, 7, 2
    side = FrozenSide(torch.as_tensor(rng.normal(size=(n_other, k))),
                      torch.as_tensor(rng.normal(size=n_other)), 0.3, None, None)
    counts = np.array([3, 0, 5, 2])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    other = np.concatenate([rng.choice(n_other, c, replace=False) for c in counts])
    values = rng.normal(size=other.size)
    center = rng.normal(size=(n_rows, k + 1))
    out = solve_rows_gn(side, indptr, other, values, RowPenalty("ridge", 0.7, center)).numpy()
    A_all = np.column_stack([side.factors.numpy(), np.ones(n_other)])
    for j in range(n_rows):
        sel = slice(indptr[j], indptr[j + 1])
        A = A_all[other[sel]]
        t = values[sel] - side.bias.numpy()[other[sel]] - 0.3
        lam = 0.7 + 1e-6  # FLOOR
        expect = np.linalg.solve(A.T @ A + lam * np.eye(k + 1), A.T @ t + lam * center[j])
        np.testing.assert_allclose(out[j], expect, atol=1e-8)
