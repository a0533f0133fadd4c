"""The feature regression (implicit feedback, side information) of BayesianMF's Gibbs sweep.

Its solves with :math:`F^\\top F + \\lambda I` never form a users x items matrix (issue 14):
one eigendecomposition of the smaller Gram matrix, built sparse, when that side has at most
``EIG_MAX_ROWS`` rows; otherwise preconditioned conjugate gradients on the sparse ``F``.
"""

from __future__ import annotations

import numpy as np
import torch

from collabkit.train.sparse_ops import csr_matrix

__all__ = ["EIG_MAX_ROWS", "ImplicitLink", "link"]

_DTYPE = torch.float32  # of the solves' eigenvectors
#: The implicit term's solves eigendecompose a Gram matrix of min(users, items) squared when
#: that side has at most this many rows (exact, once per fit); above it, conjugate gradients
#: on the sparse features, whose memory grows with the ratings (issue 14).
EIG_MAX_ROWS = 3000
_CG_MAX_ITER = 200


def link(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int, d: int,
          implicit: bool, side: np.ndarray | None) -> ImplicitLink | None:
    """The feature regression of one side, or ``None`` when it has no features."""
    if not implicit and side is None:
        return None
    return ImplicitLink(*_features(rows, cols, n_rows, n_cols, implicit, side), d)


class ImplicitLink:
    r"""Regression of one side's vectors on fixed features (Macau: Simm et al., 2015).

    .. math::

        x_r \sim \mathcal N(\mu + W^\top f_r, \Lambda^{-1}), \qquad
        w_j \sim \mathcal N\big(0, (\lambda \Lambda)^{-1}\big), \qquad
        \lambda \sim \Gamma(1, 1)

    With :math:`f_u = |N(u)|^{-1/2} \mathbb 1_{N(u)}` (the items ``u`` rated) this is the
    implicit-feedback term of SVD++, :math:`|N(u)|^{-1/2} \sum_{j \in N(u)} y_j`. ``W`` is
    drawn whole from its matrix-normal conditional by perturb-and-solve; the solves with
    :math:`F^\top F + \lambda I` use one eigendecomposition of the smaller Gram matrix, made
    once, so :math:`\lambda` can change every sweep for free, or conjugate gradients when that
    matrix would have more than ``EIG_MAX_ROWS`` rows.
    """

    def __init__(self, F: torch.Tensor, Ft: torch.Tensor, d: int) -> None:
        self.F, self.Ft = F, Ft
        n, p = F.shape
        self.wide = n <= p  # eigendecompose the smaller Gram matrix: F F^T or F^T F
        self.eig = min(n, p) <= EIG_MAX_ROWS
        self.W = torch.zeros(self.F.shape[1], d, dtype=torch.float64)
        self.lam = 1.0
        self._offset: torch.Tensor | None = None
        if self.eig:  # sparse x sparse: only the small Gram matrix is ever dense
            gram = (self.F @ self.Ft if self.wide else self.Ft @ self.F).to_dense()
            s2, E = torch.linalg.eigh(gram)
            self.s2, self.E = s2.clamp_min(0.0), E.to(_DTYPE)  # float32 halves the solves
            return
        rows = torch.repeat_interleave(torch.arange(p), Ft.crow_indices().diff())
        self.diag = torch.bincount(rows, weights=Ft.values().square(), minlength=p)

    def offset(self) -> torch.Tensor:
        """:math:`F W`, one prior-mean shift per row."""
        if self._offset is None:
            self._offset = self.F @ self.W
        return self._offset

    def _solve(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`(F^\\top F + \\lambda I)^{-1} v`, by Woodbury when ``F`` is wide."""
        lam = self.lam
        if not self.eig:
            return self._cg(v)
        E = self.E
        scale = (1.0 / (self.s2 + lam)).to(_DTYPE)[:, None]
        if not self.wide:  # F^T F = E diag(s2) E^T
            return (E @ ((E.T @ v.to(_DTYPE)) * scale)).double()
        fv = (self.F @ v).to(_DTYPE)  # F F^T = E diag(s2) E^T
        return (v - self.Ft @ (E @ ((E.T @ fv) * scale)).double()) / lam

    def _cg(self, v: torch.Tensor) -> torch.Tensor:
        """The same solve by Jacobi-preconditioned conjugate gradients, column by column,
        from the previous ``W``: a few products with the sparse ``F`` per step."""
        lam = self.lam
        minv = (1.0 / (self.diag + lam))[:, None]
        x = self.W.clone()
        r = v - (self.Ft @ (self.F @ x) + lam * x)
        z = minv * r
        direction = z.clone()
        rz = (r * z).sum(0)
        tol = 1e-12 * (v * v).sum(0).clamp_min(1e-300)
        for _ in range(_CG_MAX_ITER):
            if bool(((r * r).sum(0) <= tol).all()):
                break
            Ad = self.Ft @ (self.F @ direction) + lam * direction
            curv = (direction * Ad).sum(0)
            step = torch.where(curv > 0, rz / curv.clamp_min(1e-300), torch.zeros_like(rz))
            x += step * direction
            r -= step * Ad
            z = minv * r
            rz_new = (r * z).sum(0)
            direction = z + torch.where(rz > 0, rz_new / rz.clamp_min(1e-300),
                                        torch.zeros_like(rz)) * direction
            rz = rz_new
        return x

    def sample(self, X: torch.Tensor, mean: torch.Tensor, prec: torch.Tensor,
               rng: np.random.Generator) -> None:
        r"""Draw ``W`` given the rows ``X`` and their prior, then :math:`\lambda` given ``W``."""
        (n, p), d = self.F.shape, X.shape[1]
        chol = torch.linalg.cholesky(prec)  # prec = C C^T; rows of E C^{-1} have cov prec^{-1}
        e1 = torch.as_tensor(rng.standard_normal((n, d)))
        e2 = torch.as_tensor(rng.standard_normal((p, d)))
        e1 = torch.linalg.solve_triangular(chol, e1, upper=False, left=False)
        e2 = torch.linalg.solve_triangular(chol, e2, upper=False, left=False)
        v = self.Ft @ (X - mean + e1) + self.lam ** 0.5 * e2
        self.W = self._solve(v)
        self._offset = None
        quad = float(((self.W @ prec) * self.W).sum())
        self.lam = float(rng.gamma(1.0 + 0.5 * p * d, 1.0 / (1.0 + 0.5 * quad)))


def _features(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int,
              implicit: bool, side: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR ``F`` and ``F^T`` of ``[implicit | side]`` feature rows, each part of norm 1.

    The implicit part is :math:`f_r = |N(r)|^{-1/2} \\mathbb 1_{N(r)}`, the other side's
    indices ``cols`` that row ``r`` rated; ``side`` is a dense ``(n_rows, q)`` matrix.
    """
    parts_r, parts_c, parts_v, width = [], [], [], 0
    if implicit:
        count = torch.bincount(rows, minlength=n_rows).clamp_min(1).double()
        parts_r.append(rows)
        parts_c.append(cols)
        parts_v.append(count[rows].rsqrt())
        width = n_cols
    if side is not None:
        sr, sc = np.nonzero(side)
        parts_r.append(torch.as_tensor(sr))
        parts_c.append(torch.as_tensor(sc) + width)
        parts_v.append(torch.as_tensor(side[sr, sc], dtype=torch.float64))
        width += side.shape[1]
    r, c, v = torch.cat(parts_r), torch.cat(parts_c), torch.cat(parts_v)
    return csr_matrix(r, c, v, n_rows, width), csr_matrix(c, r, v, width, n_rows)
