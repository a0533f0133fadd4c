"""BayesianMF: Bayesian probabilistic matrix factorisation with biases, by Gibbs sampling."""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, ModelFitError
from collabkit.models import capabilities as cap
from collabkit.models._bpmf_link import EIG_MAX_ROWS, _Link, _link
from collabkit.models.base import Recommender
from collabkit.runtime import threads
from collabkit.seeds import numpy_rng, resolve_seed
from collabkit.train.rowsolve import RowPenalty
from collabkit.train.sparse_ops import csr_matrix

__all__ = ["BayesianMF", "available_memory", "csr_matrix", "side_matrix"]

_DTYPE = torch.float32  # of the sparse sums; Cholesky factors are float64


class BayesianMF(Recommender, cap.FactorModel):
    r"""Bayesian PMF (Salakhutdinov & Mnih, 2008) with biases and implicit feedback, by Gibbs.

    .. math::

        r_{ui} \sim \mathcal N\!\left(\mu + b_u + b_i + p_u^\top q_i,\;
        (\alpha\, w_u v_i)^{-1}\right),
        \qquad
        x_u = \begin{bmatrix} p_u \\ b_u \end{bmatrix} \sim
        \mathcal N\big(\mu_U + W_U^\top f_u,\; \Lambda_U^{-1}\big),
        \qquad
        y_i = \begin{bmatrix} q_i \\ b_i \end{bmatrix} \sim
        \mathcal N\big(\mu_V + W_V^\top g_i,\; \Lambda_V^{-1}\big)

    :math:`\mu` is the mean training rating. :math:`(\mu_U, \Lambda_U)` and
    :math:`(\mu_V, \Lambda_V)` have Normal-Wishart hyperpriors (:math:`\mu_0 = 0`,
    :math:`\beta_0`, :math:`W_0 = I`, :math:`\nu_0 = k + 1`) and :math:`\alpha` a
    :math:`\Gamma(1, 1)` prior. With ``implicit=True``, :math:`f_u = |N(u)|^{-1/2}
    \mathbb 1_{N(u)}` marks the items ``u`` rated, so :math:`W_U^\top f_u` is SVD++'s
    implicit term :math:`|N(u)|^{-1/2} \sum_{j \in N(u)} y_j`; :math:`g_i` marks the users who
    rated ``i`` (the "flipped" term). With ``side_info=True`` and metadata on the data
    (``user_meta``, ``item_meta``: age, gender, occupation, genres, year, ...),
    :func:`side_matrix` one-hot features are appended to :math:`f_u` and :math:`g_i`, so
    users and items with few ratings borrow from similar ones. The rows of :math:`W` have the
    prior :math:`\mathcal N(0, (\lambda \Lambda)^{-1})` of Macau (Simm et al., 2015). With
    neither, :math:`W = 0` (plain BPMF). With ``robust=c``, :math:`w_u, v_i \sim
    \Gamma(c, c)` scale the noise per user and item; otherwise they are 1.

    Each sweep draws every item vector at once (a batched Cholesky of the posterior
    precisions :math:`\Lambda_V + \alpha \sum_{u \in U_i} z_u z_u^\top`,
    :math:`z_u = [p_u; 1]`, summed by sparse-dense products), then every user vector, each
    preceded by its hyperparameters, then :math:`\alpha`. The prediction is the posterior
    mean over the :math:`S` samples kept after ``burn_in`` sweeps, clipped to the rating
    range:

    .. math::

        \hat r_{ui} = \operatorname{clip}\Big(\mu + \bar b_u + \bar b_i
                      + \tfrac1S \textstyle\sum_s p_u^{(s)\top} q_i^{(s)}\Big)

    The kept samples are stored side by side as ``(n, S k)`` factor matrices, so scoring is
    one dot product; a model file holds ``S k (n_users + n_items)`` floats.

    The defaults were chosen on validation rows carved from ml-100k ``u1.base`` to
    ``u5.base``: ``implicit`` took validation RMSE from 0.896 to 0.884, twelve factors beat
    8 and matched 16 at less cost, 200 sweeps were most of the gain of 325, and thinning
    cost accuracy (0.8765 kept every sweep, 0.8777 every 5th); side information took 0.8765
    to 0.8734 (mean of five carves). ``robust`` moved it by less than its seed-to-seed
    spread, so it is off.

    Parameters
    ----------
    n_factors : int, default 12
        Latent dimension :math:`k`.
    n_samples : int, default 175
        Sweeps after burn-in.
    burn_in : int, default 25
        Sweeps discarded before averaging.
    thin : int, default 1
        Keep every ``thin``-th sweep after burn-in (``n_samples // thin`` samples stored).
    beta0 : float, default 2.0
        Strength of the hyperprior on the factor means.
    noise_precision : float or None, default None
        Fix :math:`\alpha`; ``None`` samples it.
    implicit : bool, default True
        Add the implicit-feedback prior means :math:`W^\top f` on both sides.
    side_info : bool, default True
        Add the data's user and item metadata to those features, when it has any.
    robust : float or None, default None
        Shape ``c`` of per-user and per-item noise scales; ``None`` shares one noise level.
    clip : bool, default True
        Clip predictions to the training rating range.
    n_threads : int or None, default 1
        Torch threads while sampling (restored afterwards); ``None`` keeps torch's setting.
        A sweep is many millisecond-sized operations, where extra threads mostly add
        synchronisation: on a loaded 2-core machine two threads made a fit 10x slower.
    random_state : int or None
        Seed of the sampler (one numpy generator draws every random number).
    max_memory_gb : float or None, default None
        Refuse (with :class:`~collabkit.errors.ConfigError`, before sampling) a fit whose
        estimated peak memory (:meth:`memory_estimate`) is above this many GiB; ``None`` uses
        the memory the machine has available.

    Attributes
    ----------
    user_factors_, item_factors_ : torch.Tensor
        ``(n_users, S k)`` and ``(n_items, S k)``; the user factors are divided by ``S``.
    user_bias_, item_bias_ : torch.Tensor
        Posterior-mean biases.
    history_ : list of dict
        One per kept sample: ``sweep``, ``alpha``, ``train_rmse`` (of that sample) and, when
        ``fit`` got ``valid``, ``valid_rmse`` of the running average.
    fit_seconds_ : float

    Notes
    -----
    The implicit term needs a solve with :math:`F^\top F + \lambda I`. When the smaller side
    has at most ``EIG_MAX_ROWS`` rows, one eigendecomposition of the smaller of
    :math:`F F^\top`, :math:`F^\top F` (built sparse) is made per fit; otherwise each solve is
    a preconditioned conjugate-gradient run on the sparse features, warm-started from the
    previous sweep. No users x items matrix is ever formed: memory grows with the ratings and
    the kept samples, ``4 S k (n_users + n_items)`` bytes (issue 14).
    :meth:`fold_in` and :meth:`similar_items` see the stored samples as one linear factor
    model with :math:`S k` factors (``user_factors_`` and friends): a new user's
    concatenated vector is fitted under the population prior of the trained users (on
    ml-100k u1, folding 40 test users in from their training ratings gave test RMSE 0.959
    against 0.953 for their trained vectors, 0.16 s a user). A fold-in that samples the
    user's posterior under each kept sample's hyperparameters would need those stored too.

    Examples
    --------
    >>> from collabkit.testing.synthetic import planted_low_rank
    >>> data = planted_low_rank(n_users=60, n_items=40, k=2, seed=0).data
    >>> model = BayesianMF(n_factors=2, n_samples=20, burn_in=5, random_state=0).fit(data)
    >>> model.predict_ratings([0], [0])[0].shape
    (1,)
    """

    kind = "bpmf"
    fold_in_exactness = cap.FoldInExactness(
        "population", 0.12, "the S kept samples fold as one linear model under a prior fitted "
        "to posterior-mean rows, not sampled under each sample's own hyperparameters")

    def __init__(self, *, n_factors: int = 12, n_samples: int = 175, burn_in: int = 25,
                 thin: int = 1, beta0: float = 2.0, noise_precision: float | None = None,
                 implicit: bool = True, side_info: bool = True,
                 robust: float | None = None, clip: bool = True,
                 n_threads: int | None = 1, random_state: int | None = None,
                 max_memory_gb: float | None = None) -> None:
        self.n_factors = n_factors
        self.n_samples = n_samples
        self.burn_in = burn_in
        self.thin = thin
        self.beta0 = beta0
        self.noise_precision = noise_precision
        self.implicit = implicit
        self.side_info = side_info
        self.robust = robust
        self.clip = clip
        self.n_threads = n_threads
        self.random_state = random_state
        self.max_memory_gb = max_memory_gb

    # ------------------------------------------------------------------ fitting
    def _validate(self) -> None:
        for name, low in (("n_factors", 1), ("n_samples", 1), ("burn_in", 0), ("thin", 1)):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.thin > self.n_samples:
            raise ConfigError(f"thin={self.thin} keeps no sample out of n_samples="
                              f"{self.n_samples}; use thin <= n_samples")
        if not (self.beta0 > 0 and np.isfinite(self.beta0)):
            raise ConfigError(f"beta0 must be a positive number, got {self.beta0!r}")
        nt = self.n_threads
        if nt is not None and (not isinstance(nt, int | np.integer) or nt < 1):
            raise ConfigError(f"n_threads must be a positive integer or None, got {nt!r}")
        for name in ("noise_precision", "robust", "max_memory_gb"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and np.isfinite(v)):
                raise ConfigError(f"{name} must be a positive number or None, got {v!r}")

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self._check_memory(len(self.user_vocab_), len(self.item_vocab_), len(u))
        t0 = time.perf_counter()
        self.seed_ = resolve_seed(self.random_state)
        with threads(self.n_threads):
            self._sample(data, u, i, valid)
        self.fit_seconds_ = time.perf_counter() - t0

    def _sample(self, data: Interactions, u: np.ndarray, i: np.ndarray,
                valid: Interactions | None) -> None:
        k, (lo, hi) = int(self.n_factors), self.rating_range_
        chain = _Chain(self, data, u, i)
        check = None if valid is None else self._valid_pairs(valid)
        v_sum = None if check is None else torch.zeros(len(check[0]), dtype=torch.float64)
        # the kept samples go straight into their float32 slots (issue 14: no float64 copies)
        s = int(self.n_samples) // int(self.thin)
        user_f = torch.empty(chain.X.shape[0], s * k, dtype=torch.float32)
        item_f = torch.empty(chain.Y.shape[0], s * k, dtype=torch.float32)
        user_b = torch.zeros(chain.X.shape[0], dtype=torch.float64)
        item_b = torch.zeros(chain.Y.shape[0], dtype=torch.float64)
        history: list[dict[str, float]] = []
        for sweep in range(int(self.burn_in) + int(self.n_samples)):
            sse = chain.sweep()
            after = sweep + 1 - int(self.burn_in)
            if after <= 0 or after % int(self.thin):
                continue
            j = len(history)
            user_f[:, j * k : (j + 1) * k] = chain.X[:, :k] / s
            item_f[:, j * k : (j + 1) * k] = chain.Y[:, :k]
            user_b += chain.X[:, k]
            item_b += chain.Y[:, k]
            rec = {"sweep": sweep + 1, "alpha": chain.alpha, "train_rmse": (sse / len(u)) ** 0.5}
            if check is not None and v_sum is not None:
                v_sum += _dot(chain.X, chain.Y, check[0], check[1])
                pred = (v_sum / (j + 1) + self.global_mean_).clamp(lo, hi)
                rec["valid_rmse"] = float((pred - check[2]).square().mean().sqrt())
            history.append(rec)
        self.user_factors_, self.item_factors_ = user_f, item_f
        self.user_bias_ = (user_b / s).float()
        self.item_bias_ = (item_b / s).float()
        self.history_ = history

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> dict[str, int]:
        """Bytes a fit on data of this shape needs: ``stored`` samples and ``total`` peak.

        The kept samples take ``4 S k (n_users + n_items)`` bytes (``S = n_samples // thin``);
        the sampler's working memory grows with the ratings and the rows, never with
        ``n_users * n_items`` (issue 14).
        """
        k = int(self.n_factors)
        d = k + 1
        s = int(self.n_samples) // int(self.thin)
        rows = n_users + n_items
        stored = 4 * s * k * rows
        per_rating = 200 * n_ratings  # CSR copies of the ratings, both sides, and temporaries
        per_row = 8 * rows * (3 * d * d + d * (d + 1) // 2 + 4 * d)
        small = min(n_users, n_items)
        eig = 24 * small * small if self.implicit and small <= EIG_MAX_ROWS else 0
        return {"stored": stored, "total": stored + per_rating + per_row + eig}

    def _check_memory(self, n_users: int, n_items: int, n_ratings: int) -> None:
        """Refuse up front a fit that would need more than ``max_memory_gb``."""
        budget = self.max_memory_gb
        limit = available_memory() if budget is None else float(budget) * 2**30
        if limit is None:
            return
        need = self.memory_estimate(n_users, n_items, n_ratings)
        if need["total"] <= limit:
            return
        gib = 2.0**30
        s = int(self.n_samples) // int(self.thin)
        where = "available memory" if budget is None else "max_memory_gb"
        raise ConfigError(
            f"BayesianMF would need about {need['total'] / gib:.1f} GiB for {n_users:,} users, "
            f"{n_items:,} items and {n_ratings:,} ratings ({need['stored'] / gib:.1f} GiB of it "
            f"for {s} kept samples of n_factors={self.n_factors}), more than the "
            f"{limit / gib:.1f} GiB of {where}. Keep fewer samples (raise thin or lower "
            "n_samples), lower n_factors, or use the default model (kind 'dot'), which keeps one "
            "set of factors instead of one per sample.")

    def _valid_pairs(self, valid: Interactions) -> tuple[torch.Tensor, ...]:
        vu = self.user_vocab_.index(valid.user_vocab.ids(valid.users))
        vi = self.item_vocab_.index(valid.item_vocab.ids(valid.items))
        ok = (vu >= 0) & (vi >= 0)
        return (torch.as_tensor(vu[ok]), torch.as_tensor(vi[ok]),
                torch.tensor(valid.ratings[ok], dtype=torch.float64))

    # ------------------------------------------------------------------ capabilities
    def factor_tables(self) -> cap.FactorTables:
        """The kept samples as one linear model with ``S k`` factors (``clip`` respected)."""
        self.check_fitted()
        lo, hi = self.rating_range_
        return cap.FactorTables(self.user_factors_, self.user_bias_, self.item_factors_,
                            self.item_bias_, float(self.global_mean_), None,
                            (lo, hi) if self.clip and lo < hi else None)

    def noise_variance(self) -> float:
        """The training noise: the last kept sample's training MSE (``train_rmse`` squared;
        1.0 without a history)."""
        rmse = self.history_[-1].get("train_rmse") if getattr(self, "history_", None) else None
        if rmse is None or not math.isfinite(rmse) or rmse <= 0:
            return 1.0
        return float(rmse) ** 2

    def foldin_penalty(self, folded: cap.Side, center: np.ndarray,
                       rated: cap.FoldRows | None = None) -> RowPenalty | None:
        """None: the penalty training put on a row is its Gaussian prior, i.e. the population
        prior fold-in fits to the trained rows (``reg="matched"`` is ``"population"`` here)."""
        return None

    # ------------------------------------------------------------------ scoring
    def _finish(self, raw: torch.Tensor) -> torch.Tensor:
        if not self.clip:
            return raw
        lo, hi = self.rating_range_
        return raw.clamp(lo, hi)

    @torch.no_grad()
    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        step = max(1, (1 << 22) // self.user_factors_.shape[1])  # 16 MB gathered at a time
        out = []
        for s in range(0, len(u), step):
            us, is_ = ut[s : s + step], it[s : s + step]
            raw = ((self.user_factors_[us] * self.item_factors_[is_]).sum(1)
                   + self.user_bias_[us] + self.item_bias_[is_] + self.global_mean_)
            out.append(self._finish(raw))
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        ut = torch.as_tensor(u)
        raw = (self.user_factors_[ut] @ self.item_factors_.T + self.user_bias_[ut, None]
               + self.item_bias_[None, :] + self.global_mean_)
        return self._finish(raw)

    # ------------------------------------------------------------------ persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_,
                "user_bias": self.user_bias_, "item_bias": self.item_bias_}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.user_factors_ = tensors["user_factors"]
        self.item_factors_ = tensors["item_factors"]
        self.user_bias_ = tensors["user_bias"]
        self.item_bias_ = tensors["item_bias"]
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self.fit_seconds_ = extra.get("fit_seconds")

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed_, "history": self.history_, "fit_seconds": self.fit_seconds_}


def available_memory() -> int | None:
    """Bytes of memory the machine can still give (``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _dot(X: torch.Tensor, Y: torch.Tensor, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """:math:`b_u + b_i + p_u^\\top q_i` for index pairs (the global mean excluded)."""
    xu, yi = X[u], Y[i]
    return (xu[:, :-1] * yi[:, :-1]).sum(1) + xu[:, -1] + yi[:, -1]


class _Chain:
    """The state of one Gibbs chain and its sweep: items, users, then the noise."""

    def __init__(self, model: BayesianMF, data: Interactions, u: np.ndarray,
                 i: np.ndarray) -> None:
        self.rng = rng = numpy_rng(model.seed_)
        nu, ni, k = len(model.user_vocab_), len(model.item_vocab_), int(model.n_factors)
        self.beta0, self.fixed_alpha = float(model.beta0), model.noise_precision
        self.alpha = 2.0 if self.fixed_alpha is None else float(self.fixed_alpha)
        self.n = len(u)
        r = torch.tensor(data.ratings, dtype=torch.float64) - model.global_mean_
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        self.by_user = _Side(ut, it, r, nu, ni, _DTYPE)
        self.by_item = _Side(it, ut, r, ni, nu, _DTYPE)
        self.X = torch.as_tensor(rng.normal(0.0, 0.1, (nu, k + 1)))  # rows [p_u, b_u]
        self.Y = torch.as_tensor(rng.normal(0.0, 0.1, (ni, k + 1)))  # rows [q_i, b_i]
        self.X[:, k] = torch.as_tensor(model.user_bias_base_)
        self.Y[:, k] = torch.as_tensor(model.item_bias_base_)
        side_u = side_i = None
        if model.side_info:
            side_u = side_matrix(data.user_meta, model.user_vocab_.all_ids)
            side_i = side_matrix(data.item_meta, model.item_vocab_.all_ids)
        self.link_u = _link(ut, it, nu, ni, k + 1, model.implicit, side_u)
        self.link_i = _link(it, ut, ni, nu, k + 1, model.implicit, side_i)
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
               link: _Link | None) -> tuple[torch.Tensor, torch.Tensor]:
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


class _Side:
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
                           link: _Link | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``(mean, precision)`` of the rows of ``X`` from their Normal-Wishart posterior.

    Hyperprior: mean 0, ``beta0``, scale ``W0 = I`` and ``nu0 = d`` degrees of freedom. With a
    ``link``, the rows are ``X - F W`` and the link weights, whose rows are
    :math:`\\mathcal N(0, (\\lambda \\Lambda)^{-1})`, add their own scatter and count.
    """
    extra_scatter, extra_n = 0.0, 0
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


def side_matrix(meta: pd.DataFrame | None, raw_ids: np.ndarray, *, max_levels: int = 50,
                n_bins: int = 8) -> np.ndarray | None:
    """One-hot side features of ``raw_ids`` from a metadata table, rows scaled to norm 1.

    Numeric columns (year, age) become ``n_bins`` quantile bins plus a missing bin; text
    columns with 2 to ``max_levels`` values (gender, occupation) one column per value;
    ``|``-joined text (genres) one column per token when there are at most ``max_levels``.
    Other columns (titles, zip codes) are left out. Ids without a row get all zeros. ``None``
    when nothing is usable.
    """
    if meta is None:
        return None
    table = meta.reindex(raw_ids)
    blocks = [b for col in table.columns if (b := _encode(table[col], max_levels, n_bins))
              is not None]
    if not blocks:
        return None
    S = np.hstack(blocks)
    S[~np.isin(raw_ids, meta.index)] = 0.0  # no row at all: no features (not "missing")
    S = S[:, S.any(axis=0)]
    return S / np.maximum(np.sqrt((S**2).sum(axis=1, keepdims=True)), 1e-12)


def _encode(s: pd.Series, max_levels: int, n_bins: int) -> np.ndarray | None:
    """One column of metadata as a 0/1 matrix, or ``None`` when it is not categorical."""
    if pd.api.types.is_numeric_dtype(s):
        x = s.astype("float64").to_numpy()
        if np.isnan(x).all():
            return None
        edges = np.unique(np.nanquantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))
        return np.eye(len(edges) + 2)[codes]
    text = s.astype("string").fillna("")
    if text.str.contains("|", regex=False).any():
        multi = text.str.get_dummies(sep="|")
        return multi.to_numpy(np.float64) if 0 < multi.shape[1] <= max_levels else None
    codes, levels = pd.factorize(text.replace("", pd.NA))
    if not 2 <= len(levels) <= max_levels:
        return None
    out = np.zeros((len(codes), len(levels)))
    out[np.flatnonzero(codes >= 0), codes[codes >= 0]] = 1.0
    return out


def _wishart(scale: np.ndarray, df: float, rng: np.random.Generator) -> np.ndarray:
    """One Wishart draw by the Bartlett decomposition."""
    d = scale.shape[0]
    chol = np.linalg.cholesky(scale)
    a = np.tril(rng.standard_normal((d, d)), -1)
    a[np.diag_indices(d)] = np.sqrt(rng.chisquare(df - np.arange(d)))
    la = chol @ a
    return la @ la.T
