"""The Gibbs sampler of :class:`~collabkit.models.bpmf.BayesianMF`: one chain's state and sweep,
the per-side row sampler, the implicit/side-feature link and the Normal-Wishart draws."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import torch

from collabkit.data.features import side_matrix
from collabkit.data.interactions import Interactions
from collabkit.errors import ModelFitError
from collabkit.models.bpmf._link import ImplicitLink, link
from collabkit.seeds import numpy_rng
from collabkit.train.sparse_ops import csr_matrix

if TYPE_CHECKING:
    from collabkit.models.bpmf._estimator import BayesianMF

__all__ = ["Chain", "DTYPE", "dot"]

DTYPE = torch.float32  # of the sparse sums; Cholesky factors are float64


def dot(X: torch.Tensor, Y: torch.Tensor, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """:math:`b_u + b_i + p_u^\\top q_i` for index pairs (the global mean excluded)."""
    xu, yi = X[u], Y[i]
    return (xu[:, :-1] * yi[:, :-1]).sum(1) + xu[:, -1] + yi[:, -1]


class Chain:
    """The state of one Gibbs chain and its sweep: items, users, then the noise."""

    def __init__(self, model: BayesianMF, data: Interactions, u: np.ndarray,
                 i: np.ndarray) -> None:
        assert model.seed_ is not None, "fit() sets seed_ before sampling"
        self.rng = rng = numpy_rng(model.seed_)
        nu, ni, k = len(model.user_vocab_), len(model.item_vocab_), int(model.n_factors)
        self.beta0, self.fixed_alpha = float(model.beta0), model.noise_precision
        self.alpha = 2.0 if self.fixed_alpha is None else float(self.fixed_alpha)
        self.n = len(u)
        r = torch.tensor(data.ratings, dtype=torch.float64) - model.global_mean_
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        self.by_user = _SideSampler(ut, it, r, nu, ni, DTYPE)
        self.by_item = _SideSampler(it, ut, r, ni, nu, DTYPE)
        self.X = torch.as_tensor(rng.normal(0.0, 0.1, (nu, k + 1)))  # rows [p_u, b_u]
        self.Y = torch.as_tensor(rng.normal(0.0, 0.1, (ni, k + 1)))  # rows [q_i, b_i]
        self.X[:, k] = torch.as_tensor(model.user_bias_base_)
        self.Y[:, k] = torch.as_tensor(model.item_bias_base_)
        side_u = side_i = None
        if model.side_info:
            side_u = side_matrix(data.user_meta, model.user_vocab_.all_ids)
            side_i = side_matrix(data.item_meta, model.item_vocab_.all_ids)
        self.link_u = link(ut, it, nu, ni, k + 1, model.implicit, side_u)
        self.link_i = link(it, ut, ni, nu, k + 1, model.implicit, side_i)
        self.robust = None if model.robust is None else float(model.robust)
        self.n_u = torch.bincount(ut, minlength=nu).double()
        self.n_i = torch.bincount(it, minlength=ni).double()
        self.w_u: torch.Tensor | None = None  # per-user and per-item noise scales (robust)
        self.w_i: torch.Tensor | None = None

    def sweep(self) -> float:
        """One Gibbs sweep; returns the (noise-scale weighted) sum of squared residuals."""
        rng, a = self.rng, self.alpha
        self.Y, sse_i = self.by_item.sample(self.X, *self._prior(self.Y, self.link_i), a,
                                            self.w_i, self.w_u, rng)
        self.w_i = self._scales(self.n_i, sse_i)
        self.X, sse_u = self.by_user.sample(self.Y, *self._prior(self.X, self.link_u), a,
                                            self.w_u, self.w_i, rng)
        self.w_u = self._scales(self.n_u, sse_u)
        sse = float(sse_u.sum() if self.w_u is None else (self.w_u * sse_u).sum())
        if not np.isfinite(sse):
            raise ModelFitError("the Gibbs sampler produced non-finite factors; check the "
                                "ratings are finite, or try a larger beta0")
        if self.fixed_alpha is None:  # Gamma(1, 1) prior
            self.alpha = float(rng.gamma(1.0 + 0.5 * self.n, 1.0 / (1.0 + 0.5 * max(sse, 0.0))))
        return sse

    def _prior(self, X: torch.Tensor,
               link: ImplicitLink | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one side's hyperparameters; return its rows' prior mean and precision."""
        mean, prec = _sample_normal_wishart(X, self.beta0, self.rng, link)
        if link is None:
            return mean, prec
        link.sample(X, mean, prec, self.rng)
        return mean + link.offset(), prec

    def _scales(self, counts: torch.Tensor, sse: torch.Tensor) -> torch.Tensor | None:
        r"""Draw noise scales :math:`w \sim \Gamma(c + n/2,\ c + \alpha\, SSE/2)` (robust)."""
        if self.robust is None:
            return None
        c = self.robust
        shape = (c + 0.5 * counts).numpy()
        rate = (c + 0.5 * self.alpha * sse.clamp_min(0.0)).numpy()
        return torch.as_tensor(self.rng.gamma(shape, 1.0 / rate))


class _SideSampler:
    """One side of the sampler (users or items): the sparse incidence of its rows' ratings.

    ``rows[j]`` owns rating ``j`` and ``cols[j]`` is the other side's index. Every per-row sum
    over ratings is a product of a CSR matrix of shape ``(n_rows, n_cols)`` with a dense one.
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, r: torch.Tensor, n_rows: int,
                 n_cols: int, dtype: torch.dtype) -> None:
        self.n_rows, self.n_cols, self.dtype = n_rows, n_cols, dtype
        self.ones = csr_matrix(rows, cols, torch.ones(len(r), dtype=dtype), n_rows, n_cols)
        self.ratings = csr_matrix(rows, cols, r.to(dtype), n_rows, n_cols)
        self.squares = csr_matrix(rows, cols, r.square().to(dtype), n_rows, n_cols)

    def sample(self, other: torch.Tensor, mean: torch.Tensor, prec: torch.Tensor,
               alpha: float, row_w: torch.Tensor | None, col_w: torch.Tensor | None,
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw every row's ``[factors; bias]`` from its Gaussian full conditional.

        ``mean`` is the prior mean, ``(d,)`` or one per row ``(n_rows, d)``, and ``other``
        holds the other side's ``[factors; bias]`` rows. Rating ``(r, c)`` has noise precision
        ``alpha * row_w[r] * col_w[c]`` (a weight of ``None`` is 1). Returns the new rows and,
        per row, the sum over its ratings of ``col_w[c]`` times the squared residual.
        """
        n, d = self.n_rows, other.shape[1]
        dt = self.dtype
        c = torch.ones(len(other), dtype=dt) if col_w is None else col_w.to(dt)
        z = torch.cat([other[:, :-1].to(dt), torch.ones(len(other), 1, dtype=dt)], dim=1)
        b = other[:, -1].to(dt)
        zc = z * c[:, None]
        iu, ju = torch.triu_indices(d, d)  # the Gram matrices are symmetric: sum one half
        t = len(iu)
        feats = torch.cat([zc[:, iu] * z[:, ju], b[:, None] * zc, (c * b.square())[:, None]],
                          dim=1)
        sums = (self.ones @ feats).double()
        rz = (self.ratings @ torch.cat([zc, (c * b)[:, None]], dim=1)).double()
        gram = sums[:, _sym_index(d)].reshape(n, d, d)
        rhs = rz[:, :d] - sums[:, t : t + d]  # sum_j c_j (r_j - b_j) z_j
        t_sq = (self.squares @ c[:, None]).double()[:, 0] - 2.0 * rz[:, d] + sums[:, -1]
        a = torch.full((n,), alpha, dtype=torch.float64)
        if row_w is not None:
            a = a * row_w
        chol, info = torch.linalg.cholesky_ex(prec + a[:, None, None] * gram)
        if bool(info.any()):
            raise ModelFitError("a posterior precision matrix of the Gibbs sampler is not "
                                "positive definite; try a larger beta0= or fewer n_factors")
        # x = L^-T (L^-1 h + eps): the mean L^-T L^-1 h plus noise of covariance (L L^T)^-1
        h = (mean @ prec + a[:, None] * rhs)[:, :, None]
        eps = torch.as_tensor(rng.standard_normal((n, d, 1)))
        y = torch.linalg.solve_triangular(chol, h, upper=False) + eps
        x = torch.linalg.solve_triangular(chol.mT, y, upper=True)[:, :, 0]
        fit_sq = torch.einsum("ni,nij,nj->n", x, gram, x)
        return x, t_sq - 2.0 * (x * rhs).sum(1) + fit_sq


@functools.cache
def _sym_index(d: int) -> torch.Tensor:
    """For each entry of a ``d x d`` symmetric matrix, its column in the packed upper half."""
    iu, ju = torch.triu_indices(d, d)
    pos = torch.empty(d, d, dtype=torch.int64)
    pos[iu, ju] = torch.arange(len(iu))
    pos[ju, iu] = torch.arange(len(iu))
    return pos.reshape(-1)


def _sample_normal_wishart(X: torch.Tensor, beta0: float, rng: np.random.Generator,
                           link: ImplicitLink | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``(mean, precision)`` of the rows of ``X`` from their Normal-Wishart posterior.

    Hyperprior: mean 0, ``beta0``, scale ``W0 = I`` and ``nu0 = d`` degrees of freedom. With a
    ``link``, the rows are ``X - F W`` and the link weights, whose rows are
    :math:`\\mathcal N(0, (\\lambda \\Lambda)^{-1})`, add their own scatter and count.
    """
    extra_scatter: float | np.ndarray = 0.0
    extra_n = 0
    if link is not None:
        X = X - link.offset()
        extra_scatter = link.lam * (link.W.T @ link.W).numpy()
        extra_n = link.W.shape[0]
    x = X.numpy()
    n, d = x.shape
    xbar = x.mean(0)
    centred = x - xbar
    scatter = centred.T @ centred
    beta_n, nu_n = beta0 + n, d + n + extra_n
    mu_n = n * xbar / beta_n
    w_inv = np.eye(d) + scatter + extra_scatter + (beta0 * n / beta_n) * np.outer(xbar, xbar)
    w = np.linalg.inv(w_inv)
    w = 0.5 * (w + w.T)
    lam = _wishart(w, nu_n, rng)
    cov = np.linalg.inv(beta_n * lam)
    mu = rng.multivariate_normal(mu_n, 0.5 * (cov + cov.T), method="cholesky")
    return torch.as_tensor(mu), torch.as_tensor(lam)


def _wishart(scale: np.ndarray, df: float, rng: np.random.Generator) -> np.ndarray:
    """One Wishart draw by the Bartlett decomposition."""
    d = scale.shape[0]
    chol = np.linalg.cholesky(scale)
    a = np.tril(rng.standard_normal((d, d)), -1)
    a[np.diag_indices(d)] = np.sqrt(rng.chisquare(df - np.arange(d)))
    la = chol @ a
    return la @ la.T
