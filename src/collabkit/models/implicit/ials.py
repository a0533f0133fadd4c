r"""iALS: implicit alternating least squares (Hu, Koren and Volinsky 2008; Rendle et al. 2022).

Every (user, item) pair is a training example with target :math:`p_{ui} = 1` for an
interaction and 0 otherwise. Observed pairs have confidence :math:`c_{ui} = \alpha_0 + \alpha
w_{ui}` (``w`` the interaction weight, 1 by default); every other pair has weight
:math:`\alpha_0` (``unobserved_weight``). The loss

.. math::

    \sum_{u,i} c_{ui} (p_{ui} - x_u^\top y_i)^2
    + \lambda \sum_u (n_u + \alpha_0 n_I)^{\nu} \lVert x_u \rVert^2
    + \lambda \sum_i (n_i + \alpha_0 n_U)^{\nu} \lVert y_i \rVert^2

is HKV's with :math:`\alpha_0 = 1, \nu = 0`, and the frequency-scaled regulariser of Rendle et
al. ("Revisiting the performance of iALS on item recommendation benchmarks", 2022) with
:math:`\nu = 1`. With the items fixed, each user's row solves

.. math::

    \Big(\alpha_0 Y^\top Y + \sum_{i \in u} (c_{ui} - \alpha_0)\, y_i y_i^\top + \lambda_u I\Big)
    x_u = \sum_{i \in u} c_{ui}\, y_i

where :math:`Y^\top Y` (the Gram trick) is computed once per sweep. Rows are grouped by their
number of interactions into padded blocks of bounded memory, on CPU or CUDA. By default each
row takes a few conjugate-gradient steps from its previous value (``solver="cg"``, Takacs,
Pilaszy and Tikk 2011, as the ``implicit`` library does): the row's matrix is never formed, so
a sweep costs :math:`O(\mathrm{nnz}\, d + n d^2)` per step instead of the
:math:`O(\mathrm{nnz}\, d^2 + n d^3)` of building and factoring every system
(``solver="cholesky"``: one batched matmul and a batched Cholesky per block). A sweep solves the
items, then the users; the users of the last sweep are solved exactly (Cholesky) whatever the
solver, so the stored user rows are exact given the final items: folding a trained user's
interactions back in reproduces their scores.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, ModelFitError
from collabkit.models.implicit._base import ImplicitRecommender
from collabkit.runtime import resolve_device, threads
from collabkit.seeds import resolve_seed, torch_generator
from collabkit.train.rowsolve import padded_blocks

__all__ = ["ImplicitALS", "solve_implicit_rows"]

_BLOCK_CELLS = 1 << 16  # padded (rows x interactions) cells per batched solve
_GRAM_CELLS = 1 << 21  # cells of the (rows, d, d) normal-equation matrices per batched solve


def solve_implicit_rows(x: sp.csr_matrix, Y: torch.Tensor, gram: torch.Tensor,
                        lam: torch.Tensor, alpha: float, alpha0: float,
                        out: torch.Tensor | None = None, *, cg_steps: int = 0) -> torch.Tensor:
    r"""Solve every row's normal equations (see the module docstring) in padded blocks.

    Parameters
    ----------
    x : scipy.sparse.csr_matrix (n_rows, n_other)
        Interaction weights of the rows being solved.
    Y : Tensor (n_other, d)
        The fixed other side.
    gram : Tensor (d, d)
        :math:`\alpha_0 Y^\top Y`.
    lam : Tensor (n_rows,)
        Ridge per row.
    out : Tensor (n_rows, d), optional
        Written in place (rows without interactions get zeros). With ``cg_steps`` its rows
        are also the starting points of the conjugate-gradient iterations.
    cg_steps : int, default 0
        0: exact solves (batched Cholesky). ``n > 0``: ``n`` conjugate-gradient steps per row
        from the current ``out`` (Takacs et al. 2011; the ``implicit`` library's CPU solver):
        each step costs one product with the row's matrix, never formed, so a row costs
        :math:`O(n_u d + d^2)` per step instead of :math:`O(n_u d^2 + d^3)`.
    """
    n, d = x.shape[0], Y.shape[1]
    dev = Y.device
    out = torch.zeros(n, d, dtype=Y.dtype, device=dev) if out is None else out
    counts = np.diff(x.indptr)
    out[torch.as_tensor(np.flatnonzero(counts == 0), device=dev)] = 0
    Yp = torch.cat([Y, Y.new_zeros(1, d)])  # padded slots read this zero row
    ptr = torch.as_tensor(x.indptr.astype(np.int64), device=dev)
    # one copy each (25M interactions: 200 MB of int64, 100 MB of float32)
    other = torch.as_tensor(np.concatenate([x.indices, [Y.shape[0]]], dtype=np.int64),
                            device=dev)
    conf = torch.as_tensor(np.concatenate([alpha0 + alpha * x.data, [0.0]], dtype=np.float32),
                           device=dev).to(Y.dtype)
    nnz = len(x.indices)
    eye = torch.eye(d, dtype=Y.dtype, device=dev)
    # the (rows, d, d) systems of the exact solve stay small too; CG never forms them
    max_rows = max(1, _GRAM_CELLS // (d * d)) if cg_steps <= 0 else n
    blocks = [b[s : s + max_rows] for b in padded_blocks(counts, _BLOCK_CELLS)
              for s in range(0, len(b), max_rows)]
    for rows_np in blocks:
        rows = torch.as_tensor(rows_np, device=dev)
        c = torch.as_tensor(counts[rows_np], device=dev)
        L = int(counts[rows_np].max())
        pos = torch.arange(L, device=dev)
        take = torch.where(pos < c.unsqueeze(1), ptr[rows].unsqueeze(1) + pos, nnz).view(-1)
        Yb = Yp.index_select(0, other.index_select(0, take)).view(len(rows), L, d)
        cb = conf.index_select(0, take).view(len(rows), L, 1)
        # padded slots have confidence 0, so (c - alpha0) must be masked there
        w = torch.where(cb > 0, cb - alpha0, torch.zeros_like(cb))
        rhs = torch.bmm(Yb.transpose(1, 2), cb)
        if cg_steps > 0:
            out[rows] = _cg(Yb, w, gram, lam[rows], rhs.squeeze(-1), out[rows], cg_steps)
            continue
        A = torch.baddbmm(gram + lam[rows].view(-1, 1, 1) * eye, Yb.transpose(1, 2), Yb * w)
        chol, info = torch.linalg.cholesky_ex(A)
        if bool((info != 0).any()):
            raise ModelFitError("an iALS normal-equation matrix is not positive definite; "
                                "raise reg (it must be > 0)")
        out[rows] = torch.cholesky_solve(rhs, chol).squeeze(-1)
    return out


def _cg(Yb: torch.Tensor, w: torch.Tensor, gram: torch.Tensor, lam: torch.Tensor,
        rhs: torch.Tensor, x: torch.Tensor, steps: int) -> torch.Tensor:
    r"""``steps`` conjugate-gradient steps on every row's system at once, from ``x``.

    Row ``r``'s matrix is :math:`G + \lambda_r I + Y_r^\top W_r Y_r`, applied as
    ``p G + lam p + Y_r^T (w * (Y_r p))``; a row whose residual is already 0 stays put.
    """
    def matvec(p: torch.Tensor) -> torch.Tensor:
        yp = torch.bmm(Yb, p.unsqueeze(-1)) * w  # (rows, L, 1)
        return p @ gram + lam[:, None] * p + torch.bmm(Yb.transpose(1, 2), yp).squeeze(-1)

    x = x.clone()
    r = rhs - matvec(x)
    p = r.clone()
    rs = (r * r).sum(1)
    for _ in range(int(steps)):
        ap = matvec(p)
        pap = (p * ap).sum(1)
        step = torch.where(pap > 0, rs / torch.where(pap > 0, pap, 1.0), 0.0)
        x.addcmul_(step[:, None], p)
        r.addcmul_(step[:, None], ap, value=-1.0)
        rs_new = (r * r).sum(1)
        beta = torch.where(rs > 0, rs_new / torch.where(rs > 0, rs, 1.0), 0.0)
        p = r + beta[:, None] * p
        rs = rs_new
    return x


class ImplicitALS(ImplicitRecommender):
    r"""Implicit ALS with confidence weights (kind ``"ials"``); see the module docstring.

    The defaults were chosen by ``benchmarks/implicit_defaults.py`` (``collabkit tune`` on
    training rows of ml-100k, ml-latest-small and gowalla; results in
    ``benchmarks/results/implicit-defaults.md``).

    Parameters
    ----------
    n_factors : int, default 64
    epochs : int, default 14
        Sweeps (items, then users).
    reg : float, default 0.5
        :math:`\lambda`.
    reg_exponent : float, default 0.1
        :math:`\nu`: 1 scales the ridge with each row's frequency (Rendle et al.), 0 is HKV's
        plain ridge.
    alpha : float, default 0.2
        Confidence per unit of interaction weight.
    unobserved_weight : float, default 0.01
        :math:`\alpha_0`, the weight of every pair (HKV: 1).
    init_std : float, default 0.1
        Standard deviation of the random initial factors (divided by sqrt(n_factors)).
    solver : {"cg", "cholesky"}, default "cg"
        How each sweep solves the rows: ``cg_steps`` conjugate-gradient steps warm-started
        from the previous factors, or exact batched Cholesky solves.
    cg_steps : int, default 3
        Conjugate-gradient steps per row and sweep (``solver="cg"``).
    device : str, default "auto"
    random_state : int or None
    """

    kind = "ials"
    # the sweeps are many small batched products: one thread (a second one made a fit on
    # ml-latest-small 8x slower on a loaded 2-core machine; see collabkit.runtime.threads)
    _threads = 1

    def __init__(self, *, n_factors: int = 64, epochs: int = 14, reg: float = 0.5,
                 reg_exponent: float = 0.1, alpha: float = 0.2,
                 unobserved_weight: float = 0.01, init_std: float = 0.1,
                 solver: Literal["cg", "cholesky"] = "cg", cg_steps: int = 3,
                 device: str = "auto", random_state: int | None = None) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.reg = reg
        self.reg_exponent = reg_exponent
        self.alpha = alpha
        self.unobserved_weight = unobserved_weight
        self.init_std = init_std
        self.solver = solver
        self.cg_steps = cg_steps
        self.device = device
        self.random_state = random_state

    def _validate(self) -> None:
        if self.solver not in ("cg", "cholesky"):
            raise ConfigError(f"solver must be 'cg' or 'cholesky', got {self.solver!r}")
        for name in ("n_factors", "epochs", "cg_steps"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("reg", "alpha", "unobserved_weight", "init_std"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a number > 0, got {v!r}")
        if not (isinstance(self.reg_exponent, int | float) and 0 <= self.reg_exponent <= 1):
            raise ConfigError(f"reg_exponent must be in [0, 1], got {self.reg_exponent!r}")

    def _ridge(self, counts: np.ndarray, n_other: int) -> torch.Tensor:
        a0, nu = float(self.unobserved_weight), float(self.reg_exponent)
        lam = float(self.reg) * (counts + a0 * n_other) ** nu
        return torch.as_tensor(lam, dtype=torch.float32, device=self.device_)

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self.seed_ = resolve_seed(self.random_state)
        self.device_ = resolve_device(self.device)
        start = time.perf_counter()
        with threads(self._threads):
            self._alternate()
        self.fit_seconds_ = time.perf_counter() - start

    def _alternate(self) -> None:
        dev, k = self.device_, int(self.n_factors)
        xu = self._train_matrix()
        xi = xu.T.tocsr()
        nu, ni = xu.shape
        assert self.seed_ is not None, "fit() sets seed_ before _alternate"
        g = torch_generator(self.seed_)
        std = float(self.init_std) / math.sqrt(k)
        X = (torch.randn(nu, k, generator=g) * std).to(dev)
        Y = (torch.randn(ni, k, generator=g) * std).to(dev)
        lam_u = self._ridge(np.diff(xu.indptr), ni)
        lam_i = self._ridge(np.diff(xi.indptr), nu)
        a, a0 = float(self.alpha), float(self.unobserved_weight)
        cg = int(self.cg_steps) if self.solver == "cg" else 0
        self.history_: list[dict[str, float]] = []
        for sweep in range(int(self.epochs)):
            t0 = time.perf_counter()
            last = sweep == int(self.epochs) - 1
            solve_implicit_rows(xi, X, a0 * (X.T @ X), lam_i, a, a0, out=Y, cg_steps=cg)
            # the last users are exact: fold-in (an exact solve) reproduces them
            solve_implicit_rows(xu, Y, a0 * (Y.T @ Y), lam_u, a, a0, out=X,
                                cg_steps=0 if last else cg)
            if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
                raise ModelFitError(f"iALS produced non-finite factors in sweep {sweep + 1}; "
                                    f"raise reg (now {self.reg:g})")
            self.history_.append({"epoch": sweep + 1, "seconds": time.perf_counter() - t0})
        self.user_factors_, self.item_factors_ = X, Y

    # -------------------------------------------------------------- scoring
    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        ut = torch.as_tensor(np.asarray(u, dtype=np.int64), device=self.device_)
        return self.user_factors_[ut] @ self.item_factors_.T

    @torch.no_grad()
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        return self.fold_in_factors(x) @ self.item_factors_.T

    @torch.no_grad()
    def fold_in_factors(self, x: sp.csr_matrix) -> torch.Tensor:
        """User vectors for interaction rows ``x`` (rows x items): the same solve as training."""
        self._check_fitted()
        Y, a0 = self.item_factors_, float(self.unobserved_weight)
        lam = self._ridge(np.diff(x.indptr), len(self.item_vocab_))
        return solve_implicit_rows(sp.csr_matrix(x, dtype=np.float32), Y, a0 * (Y.T @ Y), lam,
                                   float(self.alpha), a0)

    def _item_similarity(self, item: Any) -> np.ndarray:
        j = int(self.item_vocab_.index_strict([item], what="item")[0])
        q = self.item_factors_.double().cpu().numpy()
        norms = np.linalg.norm(q, axis=1)
        return q @ q[j] / np.maximum(norms * norms[j], 1e-12)

    # -------------------------------------------------------------- persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"ials.user_factors": self.user_factors_.cpu().contiguous(),
                "ials.item_factors": self.item_factors_.cpu().contiguous()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        self.user_factors_ = tensors["ials.user_factors"].to(self.device_)
        self.item_factors_ = tensors["ials.item_factors"].to(self.device_)
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self._load_common(extra)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "seed": self.seed_, "history": self.history_}
