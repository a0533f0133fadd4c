"""The numba batch gradient (models/biased_mf/_numba.py) against the torch one, and fallbacks."""

from __future__ import annotations

import warnings

import pytest
import torch

import collabkit
from collabkit.errors import ConfigError
from collabkit.models.biased_mf import _numba
from collabkit.models.biased_mf import _trainer as sparse_mod
from collabkit.models.biased_mf._module import DotProductBias
from collabkit.models.biased_mf._packed import mf_batch_grad, pack_tables
from collabkit.models.biased_mf._trainer import _NumbaGrad, fit_biased_mf, resolve_kernel
from collabkit.models.persist import load_model
from collabkit.testing import planted_low_rank

needs_numba = pytest.mark.skipif(_numba.kernel() is None, reason="numba is not installed")


def _table(nu: int, ni: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = DotProductBias(nu, ni, k, None)
    with torch.no_grad():
        for t in (m.user_factors, m.item_factors, m.user_bias, m.item_bias):
            t.weight.normal_(0.0, 0.5, generator=g)
    return pack_tables(m)


@needs_numba
@pytest.mark.parametrize("y_range", [(0.0, 5.5), None])
@pytest.mark.parametrize("idx_dtype", [torch.int32, torch.int64])
def test_numba_gradient_equals_torch(y_range, idx_dtype):
    """Same G and squared error as mf_batch_grad, repeated rows and a stale G included."""
    nu, ni, k, n = 23, 17, 8, 400
    W = _table(nu, ni, k, seed=1)
    g = torch.Generator().manual_seed(2)
    pairs = torch.stack([torch.randint(0, nu, (n,), generator=g),
                         torch.randint(0, ni, (n,), generator=g) + nu], 1).to(idx_dtype)
    pairs[1] = pairs[0]  # the same rating pair twice, and users/items many times over
    y = torch.rand(n, generator=g) * 4 + 1
    coef = torch.rand(nu + ni, generator=g) * 0.3
    idx = torch.randperm(n, generator=g, dtype=idx_dtype)[:150]
    idx[:2] = torch.tensor([0, 1])
    mu = 0.3
    ng = _NumbaGrad(W, torch.empty_like(W), pairs, y, coef, y_range, mu, 150)
    for batch in (idx, idx[:40]):  # the second, smaller batch must not keep stale rows
        G = torch.empty_like(W)
        sq = mf_batch_grad(W, pairs[batch].long(), y[batch], G, n_users=nu, coef=coef,
                           y_range=y_range, global_bias=mu)
        sse = ng(batch.numpy())
        torch.testing.assert_close(torch.as_tensor(ng.G), G, rtol=1e-5, atol=1e-6)
        assert sse == pytest.approx(float(sq), rel=1e-5)
    assert torch.all(torch.as_tensor(ng.G)[:nu, k + 1] == 0)
    assert torch.all(torch.as_tensor(ng.G)[nu:, k] == 0)


def _planted_fit(kernel: str, **kw):
    pl = planted_low_rank(n_users=80, n_items=60, k=3, density=0.3, seed=5)
    d = pl.data
    u, i = torch.as_tensor(d.users.copy()), torch.as_tensor(d.items.copy())
    y = torch.as_tensor(d.ratings.copy())
    m = DotProductBias(d.n_users, d.n_items, 4, (0.0, 6.0))
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        m.user_factors.weight.normal_(0.0, 0.01, generator=g)
        m.item_factors.weight.normal_(0.0, 0.01, generator=g)
    res = fit_biased_mf(m, u, i, y, epochs=6, lr_max=3e-2, wd=0.01, batch_size=64,
                        generator=torch.Generator().manual_seed(1), valid=(u, i, y),
                        kernel=kernel, **kw)
    return m, res


@needs_numba
def test_fit_with_numba_matches_fit_with_torch():
    mn, rn = _planted_fit("numba")
    mt, rt = _planted_fit("torch")
    for a, b in zip(mn.parameters(), mt.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    assert rn.history[-1].valid_rmse == pytest.approx(rt.history[-1].valid_rmse, rel=1e-4)
    assert rn.history[-1].train_loss == pytest.approx(rt.history[-1].train_loss, rel=1e-4)
    assert rn.history[-1].valid_rmse < rn.history[0].valid_rmse


def test_resolve_kernel():
    assert resolve_kernel("torch", "cpu") == "torch"
    assert resolve_kernel("auto", "cuda") == "torch"
    assert resolve_kernel("auto", "cpu") == ("torch" if _numba.kernel() is None else "numba")
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_kernel("numba", "cuda")
    with pytest.raises(ConfigError, match="kernel must be"):
        resolve_kernel("fast", "cpu")


def test_auto_falls_back_to_torch_without_numba(monkeypatch):
    monkeypatch.setattr(_numba, "kernel", lambda: None)
    monkeypatch.setattr(sparse_mod, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="numba is not importable"):
        assert resolve_kernel("auto", "cpu") == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process, not at every fit
        m, res = _planted_fit("auto")
    with pytest.raises(ConfigError, match="needs the numba package"):
        resolve_kernel("numba", "cpu")
    _, ref = _planted_fit("torch")
    assert res.history[-1].valid_rmse == ref.history[-1].valid_rmse


def test_a_kernel_that_fails_to_compile_falls_back_to_torch(monkeypatch):
    def broken(*args):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(_numba, "kernel", lambda: broken)
    monkeypatch.setattr(sparse_mod, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="numba kernel failed.*no LLVM here"):
        _, res = _planted_fit("auto")
    _, ref = _planted_fit("torch")
    assert res.history[-1].valid_rmse == ref.history[-1].valid_rmse


def test_biasedmf_kernel_parameter(tmp_path):
    pl = planted_low_rank(n_users=60, n_items=40, k=2, density=0.3, seed=3)
    with pytest.raises(ConfigError, match="kernel must be"):
        collabkit.BiasedMF(kernel="gpu").fit(pl.data)
    # refit_users=False: compare what the kernels trained, not the closed-form passes after
    m = collabkit.BiasedMF(epochs=2, random_state=0, kernel="torch",
                           refit_users=False).fit(pl.data)
    assert m.get_params()["kernel"] == "torch"
    assert load_model(m.save(str(tmp_path / "m"))).kernel == "torch"
    a = collabkit.BiasedMF(epochs=2, random_state=0, refit_users=False).fit(pl.data)
    assert a.kernel == "auto"
    # both kernels train the same model
    torch.testing.assert_close(a.module_.item_factors.weight, m.module_.item_factors.weight,
                               rtol=1e-3, atol=1e-4)
