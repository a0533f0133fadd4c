r"""BPR: Bayesian personalised ranking (Rendle et al. 2009) with a numba CPU kernel.

For a user :math:`u`, an item :math:`i` they interacted with and an item :math:`j` they did
not, BPR maximises :math:`\ln \sigma(\hat x_{ui} - \hat x_{uj})` with
:math:`\hat x_{ui} = b_i + p_u^\top q_i`, by stochastic gradient ascent on one sampled triple
at a time (L2 penalty ``reg`` on the rows the triple touches). An epoch draws as many triples
as there are interactions: a uniformly random interaction :math:`(u, i)` and a uniformly random
item :math:`j` the user has not interacted with (rejection sampling on the user's sorted items).

The kernel is one serial numba loop (like BiasedMF's, :mod:`collabkit.train._numba`); numba is
a dependency of collabkit, and without it BPR refuses to fit rather than run a Python loop.
Fold-in: a new user's vector is a few hundred BPR steps on their items with the items frozen.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, ModelFitError
from collabkit.models.implicit._base import ImplicitRecommender
from collabkit.seeds import numpy_rng, resolve_seed

numba: ModuleType | None
try:
    numba = importlib.import_module("numba")
except Exception:  # noqa: BLE001  (ImportError, or a broken llvmlite / numpy mismatch)
    numba = None

__all__ = ["BPR"]


def _epoch_py(P: np.ndarray, Q: np.ndarray, b: np.ndarray, indptr: np.ndarray,
              indices: np.ndarray, users: np.ndarray, n_samples: int, lr: float, reg: float,
              update_items: bool, seed: int) -> float:
    """One BPR epoch; returns the mean log-likelihood of the sampled triples."""
    np.random.seed(seed)
    n_items = Q.shape[0]
    k = P.shape[1]
    total = 0.0
    nnz = indices.shape[0]
    for _ in range(n_samples):
        r = np.random.randint(nnz)
        u = users[r]
        i = indices[r]
        start, end = indptr[u], indptr[u + 1]
        if end - start >= n_items:
            continue
        j = np.random.randint(n_items)
        for _try in range(20):  # rejection: j must be unseen (the user's items are sorted)
            pos = np.searchsorted(indices[start:end], j)
            if pos >= end - start or indices[start + pos] != j:
                break
            j = np.random.randint(n_items)
        x = b[i] - b[j]
        for f in range(k):
            x += P[u, f] * (Q[i, f] - Q[j, f])
        g = 1.0 / (1.0 + math.exp(x))  # sigma(-x): d ln sigma(x) / dx
        total += -math.log1p(math.exp(-x)) if x > -30 else x
        for f in range(k):
            pu, qi, qj = P[u, f], Q[i, f], Q[j, f]
            P[u, f] += lr * (g * (qi - qj) - reg * pu)
            if update_items:
                Q[i, f] += lr * (g * pu - reg * qi)
                Q[j, f] += lr * (-g * pu - reg * qj)
        if update_items:
            b[i] += lr * (g - reg * b[i])
            b[j] += lr * (-g - reg * b[j])
    return total / max(1, n_samples)


_epoch: Callable[..., float] | None = (
    numba.njit(cache=True, fastmath={"reassoc", "contract"})(_epoch_py)
    if numba is not None else None)


def _kernel() -> Callable[..., float]:
    """The compiled :func:`_epoch_py`; :class:`ConfigError` when numba cannot be imported."""
    if _epoch is None:
        raise ConfigError("BPR needs numba (a dependency of collabkit) and it cannot be "
                          "imported here; reinstall collabkit, or use kind 'ials'")
    return _epoch


class BPR(ImplicitRecommender):
    r"""Matrix factorisation trained with the BPR pairwise loss (kind ``"bpr"``).

    The defaults were chosen by ``benchmarks/implicit_defaults.py`` (``collabkit tune`` on
    training rows of ml-100k, ml-latest-small and gowalla; results in
    ``benchmarks/results/implicit-defaults.md``).

    Parameters
    ----------
    n_factors : int, default 128
    epochs : int, default 75
        Passes of as many sampled triples as there are interactions.
    lr : float, default 0.09
    reg : float, default 0.01
    init_std : float, default 0.1
    random_state : int or None
    """

    kind = "bpr"

    def __init__(self, *, n_factors: int = 128, epochs: int = 75, lr: float = 0.09,
                 reg: float = 0.01, init_std: float = 0.1,
                 random_state: int | None = None) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.init_std = init_std
        self.random_state = random_state

    def _validate(self) -> None:
        for name in ("n_factors", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name, low in (("lr", 0.0), ("reg", -1e-300), ("init_std", 0.0)):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > low):
                raise ConfigError(f"{name} must be a number {'>= 0' if name == 'reg' else '> 0'}"
                                  f", got {v!r}")
        _kernel()

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self.seed_ = resolve_seed(self.random_state)
        rng = numpy_rng(self.seed_)
        nu, ni, k = len(self.user_vocab_), len(self.item_vocab_), int(self.n_factors)
        P = rng.normal(0.0, float(self.init_std), (nu, k)).astype(np.float32)
        Q = rng.normal(0.0, float(self.init_std), (ni, k)).astype(np.float32)
        b = np.zeros(ni, dtype=np.float32)
        indptr, indices = self.seen_indptr_, self.seen_indices_
        users = np.repeat(np.arange(nu), np.diff(indptr))
        self.history_: list[dict[str, float]] = []
        start = time.perf_counter()
        for epoch in range(int(self.epochs)):
            t0 = time.perf_counter()
            ll = _kernel()(P, Q, b, indptr, indices, users, len(indices), float(self.lr),
                           float(self.reg), True, int(rng.integers(2**31 - 1)))
            if not (math.isfinite(ll) and np.isfinite(P).all() and np.isfinite(Q).all()):
                raise ModelFitError(f"BPR diverged in epoch {epoch + 1}; lower lr (now "
                                    f"{self.lr:g}) or raise reg")
            self.history_.append({"epoch": epoch + 1, "log_likelihood": float(ll),
                                  "seconds": time.perf_counter() - t0})
        self.fit_seconds_ = time.perf_counter() - start
        self.user_factors_ = torch.as_tensor(P)
        self.item_factors_ = torch.as_tensor(Q)
        self.item_bias_ = torch.as_tensor(b)

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        ut = torch.as_tensor(np.asarray(u, dtype=np.int64))
        return self.user_factors_[ut] @ self.item_factors_.T + self.item_bias_

    @torch.no_grad()
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        """Fold-in: BPR steps on each row's items with the items frozen, then its scores."""
        x = sp.csr_matrix(x)
        x.sort_indices()
        n, k = x.shape[0], int(self.n_factors)
        P = np.zeros((n, k), dtype=np.float32)
        Q, b = self.item_factors_.numpy(), self.item_bias_.numpy()
        users = np.repeat(np.arange(n), np.diff(x.indptr))
        if len(users):
            steps, epoch = max(200, 50 * len(x.indices)), _kernel()
            for e in range(10):
                epoch(P, Q, b, x.indptr.astype(np.int64), x.indices.astype(np.int64), users,
                      steps, float(self.lr), float(self.reg), False, 7919 * e + 1)
        return torch.as_tensor(P) @ self.item_factors_.T + self.item_bias_

    def _item_similarity(self, item: Any) -> np.ndarray:
        j = int(self.item_vocab_.index_strict([item], what="item")[0])
        q = self.item_factors_.double().numpy()
        norms = np.linalg.norm(q, axis=1)
        return q @ q[j] / np.maximum(norms * norms[j], 1e-12)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"bpr.user_factors": self.user_factors_.contiguous(),
                "bpr.item_factors": self.item_factors_.contiguous(),
                "bpr.item_bias": self.item_bias_.contiguous()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.user_factors_ = tensors["bpr.user_factors"]
        self.item_factors_ = tensors["bpr.item_factors"]
        self.item_bias_ = tensors["bpr.item_bias"]
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self._load_common(extra)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "seed": self.seed_, "history": self.history_}
