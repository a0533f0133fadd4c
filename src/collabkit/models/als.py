r"""BiasedALS: biased matrix factorisation by alternating least squares, solved exactly.

.. math::

    \hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i

minimising

.. math::

    \sum_{(u,i)} (r_{ui} - \hat r_{ui})^2
    + \lambda \sum_u n_u^{\alpha} \lVert (p_u, b_u) \rVert^2
    + \lambda \sum_i n_i^{\alpha} \lVert (q_i, b_i) \rVert^2

With the items fixed, each user's row :math:`x_u = (p_u, b_u)` is a ridge regression on
:math:`z_i = (q_i, 1)` with targets :math:`t_{ui} = r_{ui} - \mu - b_i`:

.. math::

    \big(Z_u^\top Z_u + \lambda n_u^{\alpha} I\big)\, x_u = Z_u^\top t_u

and symmetrically for the items. :math:`\lambda` is ``reg`` times the standard deviation
:math:`s` of the training ratings (``reg_``): the factors of ratings ``c`` times wider are
:math:`\sqrt c` times longer, so the ridge that fits them grows as ``c``, and one ``reg``
holds on 1-5 stars and on -10..+10 alike (issue 14).

Every user's system is built and solved at once: rows are grouped by their number of
ratings into padded blocks (bounded memory), the Gram matrices come from one batched matmul
per block and the solves from a batched Cholesky
(``torch.linalg.cholesky`` + ``torch.cholesky_solve``). No users × items matrix is formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, ModelFitError
from collabkit.models import capabilities as cap
from collabkit.models.base import Recommender
from collabkit.runtime import load_device, resolve_device, threads
from collabkit.seeds import resolve_seed, torch_generator
from collabkit.train.rowsolve import RowPenalty, padded_blocks
from collabkit.train.runner import EpochOutcome, EpochStats, run_epochs
from collabkit.train.validation import valid_pairs

__all__ = ["BiasedALS", "solve_rows"]

#: Padded (rows × ratings) cells per block of the batched solve: bounds its memory.
_BLOCK_CELLS = 1 << 15


class _Side:
    """The ratings grouped by one side (CSR): row ``r`` owns ``other[ptr[r]:ptr[r + 1]]``."""

    def __init__(self, rows: np.ndarray, other: np.ndarray, r: np.ndarray, n_rows: int,
                 n_other: int, device: torch.device) -> None:
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=n_rows)
        self.counts = torch.as_tensor(counts, device=device)
        self.ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
        # one trailing pad entry: padded slots point at it, and it points at a zero row
        self.nnz = int(len(order))
        self.other = torch.as_tensor(np.append(other[order], n_other), device=device)
        self.r = torch.as_tensor(np.append(r[order], 0.0).astype(np.float32), device=device)
        self.blocks = _blocks(counts)


def _blocks(counts: np.ndarray) -> list[np.ndarray]:
    """Rows sorted by count, cut so each padded block has at most ``_BLOCK_CELLS`` cells."""
    return padded_blocks(counts, _BLOCK_CELLS)


def solve_rows(side: _Side, Z: torch.Tensor, offset: torch.Tensor, lam: torch.Tensor,
               out: torch.Tensor) -> None:
    r"""Solve :math:`(Z_r^\top Z_r + \lambda_r I) x_r = Z_r^\top (y_r - o_r)` for every row.

    Parameters
    ----------
    side : _Side
        Ratings grouped by the rows being solved.
    Z : Tensor (n_other, d)
        Fixed design rows of the other side.
    offset : Tensor (n_other,)
        Subtracted from each rating (:math:`\mu + b_{other}`).
    lam : Tensor (n_rows,)
        Ridge per row.
    out : Tensor (n_rows, d)
        Written in place; rows without ratings are left alone.
    """
    d = Z.shape[1]
    eye = torch.eye(d, dtype=Z.dtype, device=Z.device)
    Zp = torch.cat([Z, Z.new_zeros(1, d)])       # padded slots read this zero row
    offp = torch.cat([offset, offset.new_zeros(1)])
    for rows_np in side.blocks:
        rows = torch.as_tensor(rows_np, device=Z.device)
        c = side.counts[rows]
        L = int(c.max())
        pos = torch.arange(L, device=Z.device)
        take = torch.where(pos.unsqueeze(0) < c.unsqueeze(1),
                           side.ptr[rows].unsqueeze(1) + pos.unsqueeze(0), side.nnz).view(-1)
        other = side.other.index_select(0, take)
        Zb = Zp.index_select(0, other).view(len(rows), L, d)
        tb = (side.r.index_select(0, take) - offp.index_select(0, other)).view(len(rows), L, 1)
        A = torch.baddbmm(lam[rows].view(-1, 1, 1) * eye, Zb.transpose(1, 2), Zb)
        rhs = torch.bmm(Zb.transpose(1, 2), tb)
        chol, info = torch.linalg.cholesky_ex(A)
        if bool((info != 0).any()):
            raise ModelFitError("a normal-equation matrix is not positive definite; raise "
                                "reg= (a ridge above 0 always makes it so)")
        out[rows] = torch.cholesky_solve(rhs, chol).squeeze(-1)


class BiasedALS(Recommender, cap.FactorModel):
    r"""Biased matrix factorisation by exact alternating least squares (kind ``"als"``).

    See the module docstring for the objective and the batched solve. A sweep solves every
    user, then every item; each is exact given the other side, so the loss never increases.
    Predictions are clipped to the training rating range. On MovieLens 100k u1 the defaults
    reach test RMSE 0.925 (u2: 0.913) in about 1 s; ``n_factors=20`` gives the same accuracy
    in 0.25 s.

    Parameters
    ----------
    n_factors : int, default 50
    epochs : int, default 10
        Sweeps (users then items).
    reg : float, default 1.33
        :math:`\lambda` per unit of the ratings' standard deviation: the ridge used,
        ``reg_``, is ``reg`` times that deviation (1.33 x 1.12 = 1.5 on MovieLens 100k, the
        former default there).
    reg_exponent : float, default 0.5
        :math:`\alpha`: the ridge of a row grows as :math:`n^{\alpha}` with its number of
        ratings (1 is ALS-WR's weighted-λ; 0 a plain ridge).
    init_std : float, default 0.1
        Standard deviation of the random initial item factors.
    device : str, default "auto"
    random_state : int or None
    callback : callable or None
        Called with :class:`~collabkit.train.loop.EpochStats` after each sweep (training
        RMSE squared as ``train_loss``; with ``fit(data, valid)`` the RMSE on the ``valid``
        rows of known users and items as ``valid_rmse``).

    Attributes
    ----------
    history_ : list of dict
        One :class:`~collabkit.train.loop.EpochStats` per sweep.
    valid_rmse_ : float or None
        RMSE on ``valid`` after the last sweep (None when ``fit`` got no ``valid``).

    Notes
    -----
    Training runs on one torch thread (:func:`collabkit.runtime.threads`): the batched solves
    are small, and on a shared machine a second thread mostly waits.
    """

    kind = "als"
    fold_in_exactness = cap.FoldInExactness(
        "matched", 0.01, "fold-in solves the same ridge against the final items; the user rows "
        "were solved against the items of the sweep before, which moved a little since")

    def __init__(self, *, n_factors: int = 50, epochs: int = 10, reg: float = 1.33,
                 reg_exponent: float = 0.5, init_std: float = 0.1, device: str = "auto",
                 random_state: int | None = None,
                 callback: Callable[[EpochStats], None] | None = None) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.reg = reg
        self.reg_exponent = reg_exponent
        self.init_std = init_std
        self.device = device
        self.random_state = random_state
        self.callback = callback

    def _validate(self) -> None:
        for name in ("n_factors", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("reg", "init_std"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a number > 0, got {v!r}")
        if not (isinstance(self.reg_exponent, int | float) and 0 <= self.reg_exponent <= 1):
            raise ConfigError(f"reg_exponent must be in [0, 1], got {self.reg_exponent!r}")

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self.seed_ = resolve_seed(self.random_state)
        self.device_ = resolve_device(self.device)
        check = None
        if valid is not None:
            vu, vi, vr, _ = valid_pairs(self.user_vocab_, self.item_vocab_, valid)
            dev = self.device_
            check = (torch.as_tensor(vu, device=dev), torch.as_tensor(vi, device=dev),
                     torch.as_tensor(vr, dtype=torch.float64, device=dev))
        with threads(1):
            self._alternate(u, i, data.ratings, check)

    def _valid_rmse(self, check: tuple[torch.Tensor, ...] | None, X: torch.Tensor,
                    Y: torch.Tensor) -> float | None:
        if check is None or not len(check[2]):
            return None
        vu, vi, vr = check
        s = ((X[vu, :-1] * Y[vi, :-1]).sum(-1) + X[vu, -1] + Y[vi, -1]).double() \
            + self.global_mean_
        return float((self._clip(s) - vr).square().mean().sqrt())

    def _alternate(self, u: np.ndarray, i: np.ndarray, r: np.ndarray,
                   check: tuple[torch.Tensor, ...] | None = None) -> None:
        dev, k = self.device_, int(self.n_factors)
        nu, ni = len(self.user_vocab_), len(self.item_vocab_)
        users, items = _Side(u, i, r, nu, ni, dev), _Side(i, u, r, ni, nu, dev)
        mu = float(self.global_mean_)
        assert self.seed_ is not None, "fit() sets seed_ before training"
        g = torch_generator(self.seed_)
        X = torch.zeros(nu, k + 1, device=dev)                 # (p_u, b_u)
        Y = torch.zeros(ni, k + 1, device=dev)                 # (q_i, b_i)
        Y[:, :k] = torch.randn(ni, k, generator=g).to(dev) * float(self.init_std)
        self.reg_ = float(self.reg) * (float(np.std(r)) or 1.0)  # see the module docstring
        lam_u = self.reg_ * users.counts.float() ** float(self.reg_exponent)
        lam_i = self.reg_ * items.counts.float() ** float(self.reg_exponent)
        ones_u, ones_i = torch.ones(nu, 1, device=dev), torch.ones(ni, 1, device=dev)

        def sweep_fn(sweep: int) -> EpochOutcome:
            solve_rows(users, torch.cat([Y[:, :k], ones_i], 1), mu + Y[:, k], lam_u, X)
            solve_rows(items, torch.cat([X[:, :k], ones_u], 1), mu + X[:, k], lam_i, Y)
            mse = self._sse(users, X, Y, mu) / max(1, len(r))
            self.valid_rmse_ = self._valid_rmse(check, X, Y) if math.isfinite(mse) else None
            return EpochOutcome(mse, self.valid_rmse_, 0.0)

        result = run_epochs(sweep_fn, int(self.epochs), callback=self.callback, what="sweep",
                            remedy=f"ALS produced non-finite factors; raise reg "
                                   f"(now {self.reg:g}).")
        self.history_ = [vars(h) for h in result.history]
        self.fit_seconds_ = result.fit_seconds
        self.user_factors_, self.user_bias_ = X[:, :k].contiguous(), X[:, k].contiguous()
        self.item_factors_, self.item_bias_ = Y[:, :k].contiguous(), Y[:, k].contiguous()

    @staticmethod
    def _sse(side: _Side, X: torch.Tensor, Y: torch.Tensor, mu: float) -> float:
        rows = torch.repeat_interleave(torch.arange(X.shape[0], device=X.device), side.counts)
        other = side.other[: side.nnz]
        pred = (X[rows, :-1] * Y[other, :-1]).sum(-1) + X[rows, -1] + Y[other, -1]
        return float(((side.r[: side.nnz] - mu - pred) ** 2).sum())

    # -------------------------------------------------------------- capabilities
    def factor_tables(self) -> cap.FactorTables:
        """Linear tables, the global mean as offset, clipped to the rating range."""
        self.check_fitted()
        lo, hi = self.rating_range_
        return cap.FactorTables(self.user_factors_, self.user_bias_, self.item_factors_,
                            self.item_bias_, float(self.global_mean_), None,
                            (lo, hi) if lo < hi else None)

    def foldin_penalty(self, folded: cap.Side, center: np.ndarray,
                       rated: cap.FoldRows | None = None) -> RowPenalty:
        r"""The objective's own ridge: :math:`\lambda n^{\alpha}` on ``(p, b)``."""
        ridge = float(getattr(self, "reg_", self.reg))  # fitted: reg x the ratings' std
        return RowPenalty("count", ridge, center, power=float(self.reg_exponent))

    # -------------------------------------------------------------- scoring
    def _clip(self, s: torch.Tensor) -> torch.Tensor:
        lo, hi = self.rating_range_
        return s.clamp(lo, hi) if lo < hi else s

    @torch.no_grad()
    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        ut, it = torch.as_tensor(u, device=self.device_), torch.as_tensor(i, device=self.device_)
        s = ((self.user_factors_[ut] * self.item_factors_[it]).sum(-1) + self.user_bias_[ut]
             + self.item_bias_[it] + self.global_mean_)
        return self._clip(s).double().cpu().numpy()

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        ut = torch.as_tensor(u, device=self.device_)
        s = (self.user_factors_[ut] @ self.item_factors_.T + self.user_bias_[ut].unsqueeze(1)
             + self.item_bias_.unsqueeze(0) + self.global_mean_)
        return self._clip(s)

    # -------------------------------------------------------------- persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"als.user_factors": self.user_factors_.cpu(),
                "als.item_factors": self.item_factors_.cpu(),
                "als.user_bias": self.user_bias_.cpu(), "als.item_bias": self.item_bias_.cpu()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.device_ = load_device(self.device)
        for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
            setattr(self, f"{name}_", tensors[f"als.{name}"].to(self.device_))
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self.fit_seconds_ = extra.get("fit_seconds")
        self.valid_rmse_ = extra.get("valid_rmse")
        self.reg_ = float(extra.get("reg_used", self.reg))

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed_, "history": self.history_, "fit_seconds": self.fit_seconds_,
                "valid_rmse": getattr(self, "valid_rmse_", None), "reg_used": self.reg_}
