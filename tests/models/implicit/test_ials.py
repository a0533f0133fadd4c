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
                    reg_exponent=1.0, random_state=0, device="cpu").fit(checkerboard)
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
                                 {"reg_exponent": 2.0}, {"solver": "lu"}, {"cg_steps": 0}])
def test_bad_params(checkerboard, bad) -> None:
    with pytest.raises(ConfigError):
        ImplicitALS(**bad).fit(checkerboard)


def _random_rows(seed: int, n: int = 30, m: int = 25, d: int = 8):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    x = sp.random(n, m, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    x.data[:] = rng.integers(1, 4, x.nnz)  # counts 1-3
    Y = torch.as_tensor(rng.normal(0, 0.3, (m, d)), dtype=torch.float32)
    lam = torch.as_tensor(0.1 + rng.random(n), dtype=torch.float32)
    return x, Y, 0.5 * (Y.T @ Y), lam


def test_issue13_cg_converges_to_the_cholesky_solution() -> None:
    """Issue 13: d conjugate-gradient steps from zero solve a row's d x d system (up to float32
    rounding), so they agree with the exact Cholesky solve."""
    from collabkit.models.implicit.ials import solve_implicit_rows

    x, Y, gram, lam = _random_rows(0)
    exact = solve_implicit_rows(x, Y, gram, lam, 2.0, 0.5)
    cg = solve_implicit_rows(x, Y, gram, lam, 2.0, 0.5, out=torch.zeros_like(exact),
                             cg_steps=16)
    np.testing.assert_allclose(cg.numpy(), exact.numpy(), atol=1e-4)
    # a few steps from the exact answer stay there (warm start); from zero they do not yet
    warm = solve_implicit_rows(x, Y, gram, lam, 2.0, 0.5, out=exact.clone(), cg_steps=3)
    np.testing.assert_allclose(warm.numpy(), exact.numpy(), atol=1e-5)
    cold = solve_implicit_rows(x, Y, gram, lam, 2.0, 0.5, out=torch.zeros_like(exact),
                               cg_steps=1)
    assert float((cold - exact).abs().max()) > 1e-3


def test_issue13_cg_and_cholesky_models_agree() -> None:
    """Issue 13: the default CG solver (3 warm-started steps, fewer than the 6 factors) and
    Cholesky approach the same model on a small random set: 0.5 % of the score scale after
    60 sweeps, closer than after 10."""
    import pandas as pd

    from collabkit.data.implicit import read_interactions

    rng = np.random.default_rng(7)
    x = (rng.random((40, 30)) < 0.25).astype(float)
    x[np.arange(40), np.arange(40) % 30] = 1.0
    u, i = np.nonzero(x)
    data = read_interactions(pd.DataFrame({"user": u, "item": i}))
    gaps = []
    for epochs in (10, 60):
        # the weights the bound was set with (the defaults before issue 13's search)
        kw = {"n_factors": 6, "epochs": epochs, "reg": 0.05, "reg_exponent": 1.0, "alpha": 1.0,
              "unobserved_weight": 1.0, "random_state": 0, "device": "cpu"}
        cg = ImplicitALS(**kw).fit(data)
        chol = ImplicitALS(**kw, solver="cholesky").fit(data)
        assert cg.solver == "cg" and cg.cg_steps == 3  # the defaults
        a, b = cg._score_users(np.arange(40)).numpy(), chol._score_users(np.arange(40)).numpy()
        gaps.append(float(np.abs(a - b).max()))
    assert gaps[1] < gaps[0] and gaps[1] <= 5e-3 * float(np.abs(b).max())


# issue 13: iALS at 25M interactions must stay under 4 GB; at test scale, a 40k x 40k catalog
# (a dense users x items float32 matrix would be 6,100 MiB) trains under a 3 GiB address space
_SPARSE_CATALOG = """
import resource
import numpy as np, pandas as pd
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from collabkit.data.implicit import read_interactions
from collabkit.metrics.fullrank import topk_unseen
from collabkit.models.implicit import ImplicitALS
n = 40_000
rng = np.random.default_rng(0)
u = np.concatenate([np.arange(n), np.arange(n), rng.integers(0, n, n)])
i = np.concatenate([np.arange(n), rng.permutation(n), rng.integers(0, n, n)])
pairs = np.unique(np.stack([u, i], 1), axis=0)
data = read_interactions(pd.DataFrame({"user": pairs[:, 0], "item": pairs[:, 1]}))
m = ImplicitALS(n_factors=8, epochs=2, random_state=0).fit(data)
top = topk_unseen(m, np.arange(3000), 20)
assert m.user_factors_.shape == (n, 8) and (top >= 0).all()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_issue13_sparse_catalog_fits_without_a_users_by_items_matrix() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _SPARSE_CATALOG], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) / 1024 < 1500  # MiB; the dense matrix alone: 6,100
