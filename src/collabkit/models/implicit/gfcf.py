r"""GraphFilter: closed-form low-pass graph filtering of the interaction matrix (GF-CF, BSPM).

With :math:`R` the users x items interaction matrix and :math:`D_U, D_I` its row and column
sums, the normalised matrix is :math:`\tilde R = D_U^{-1/2} R D_I^{-1/2}` and the normalised
item-item graph :math:`\tilde P = \tilde R^\top \tilde R` (eigenvalues in [0, 1]). A user's
scores are a filter of their interaction row :math:`r`:

.. math::

    s_0 = r \tilde P + \alpha \, r D_I^{-1/2} V V^\top D_I^{1/2}

where :math:`V` holds the top ``n_factors`` right singular vectors of :math:`\tilde R` (the
*ideal low-pass* part of GF-CF, Shen et al. 2021, "How powerful is graph convolution for
recommendation?"). With ``sharpen = T > 0`` the scores are then *sharpened* as in BSPM (Choi et
al. 2023, "Blurring-sharpening process models for collaborative filtering"): one fourth-order
Runge-Kutta step of the reverse heat equation :math:`\dot s = -s \tilde P` over time ``T``,
which for this linear equation is exactly

.. math::

    s = s_0 \Big(I - T\tilde P + \tfrac{T^2}{2}\tilde P^2 - \tfrac{T^3}{6}\tilde P^3
        + \tfrac{T^4}{24}\tilde P^4\Big)

Nothing is trained by gradient: fitting is one sparse normalisation and one truncated SVD
(``torch.svd_lowrank``), and with ``sharpen > 0`` the sharpening of the low-pass factor
:math:`V^\top D_I^{1/2}` (``n_factors`` rows, once). Scoring never forms the dense item-item
matrix: by linearity :math:`s = r\tilde P p(\tilde P) + \alpha (r D_I^{-1/2} V)(V^\top
D_I^{1/2} p(\tilde P))`, so a block of users costs one dense product for the low-pass part and
five propagations (two sparse-dense products through :math:`\tilde R` each) for the linear
part; ``materialize=True`` trades those propagations for a dense filter built at fit time. A
new user's scores come from their interaction vector directly (no fold-in solve needed).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models.implicit._base import ImplicitRecommender
from collabkit.runtime import resolve_device, threads
from collabkit.seeds import resolve_seed

__all__ = ["GraphFilter"]

_COLS = 512  # rows filtered at once: a few (n_items x 512) float32 blocks


def _torch_csr(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    m = m.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only mm
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.as_tensor(m.indptr.astype(np.int64)),
            torch.as_tensor(m.indices.astype(np.int64)),
            torch.as_tensor(m.data.astype(np.float32)), size=m.shape, check_invariants=False,
        ).to(device)


class GraphFilter(ImplicitRecommender):
    r"""Closed-form graph filter for implicit feedback (kind ``"gfcf"``).

    See the module docstring for the filter. The numeric defaults were chosen by
    ``benchmarks/implicit_defaults.py`` (``collabkit tune`` on training rows of ml-100k,
    ml-latest-small and gowalla; results in ``benchmarks/results/implicit-defaults.md``);
    GF-CF's published ones are ``alpha=0.3, sharpen=0.0``. With ``sharpen > 0`` ranking every
    user is slower unless the filter is materialised (``materialize``, below). On
    Gowalla (LightGCN split, full ranking) the search of ``benchmarks/implicit.py`` on a
    validation carve of train.txt chose ``n_factors=448, alpha=0.2, sharpen=2.5`` (BSPM's
    published setting), which scored Recall@20 0.1924 / NDCG@20 0.1606 on test.txt with a 51 s
    fit on a loaded 2-core machine; on ml-100k as implicit data ``sharpen=2.5`` lowered
    Recall@20 (0.26 against 0.32 on a per-user 80/20 split), so tune it per dataset.

    Parameters
    ----------
    n_factors : int, default 256
        Rank of the ideal low-pass filter (top singular vectors of :math:`\tilde R`).
    alpha : float, default 0.1
        Weight of the ideal low-pass part; 0 leaves the linear filter :math:`r\tilde P` alone.
    sharpen : float, default 1.5
        BSPM sharpening time :math:`T`; 0 is plain GF-CF.
    svd_iters : int, default 4
        Power iterations of the randomised SVD (more: closer to the exact subspace).
    materialize : bool or "auto", default "auto"
        Precompute the dense items x items filter when fitting (and loading): the scores are
        linear in the interaction row, so row ``i`` of the filter is the score of a user who
        has only item ``i``. It costs ``4 * n_items**2`` bytes (6.7 GB for Gowalla's 41k
        items; ``True`` is refused, with the size, beyond 80% of the memory available) and the
        time of scoring ``n_items`` users once; after that scoring a batch of users is one
        sparse-dense product instead of four propagations per batch, which is what makes
        ranking every user fast with ``sharpen > 0``. ``"auto"`` materialises when
        ``sharpen > 0`` (without sharpening a batch costs one propagation, about what the
        dense product costs) and the filter needs at most half the memory available at that
        moment; :attr:`materialized_` says what was done. The model file stays small (the
        filter is rebuilt on load, by the same rule).
        Gowalla, 448 factors, sharpen 2.5, on a 2-core machine at load 13-19
        (``benchmarks/implicit_scale.py gfcf``): fit 2,070 s, top-20 for all 29,858 users
        64.5 s, 5.9x faster per user than the lazy filter; 8.0 GB peak RSS.
    recency : float or None, default None
        Half-life, in interactions, of a past interaction's weight when scoring (needs
        timestamps); ``None`` weighs all alike. See :class:`ImplicitRecommender`.
    device : str, default "auto"
    random_state : int or None
        Seed of the randomised SVD.

    Notes
    -----
    ``alpha`` and ``sharpen`` act when scoring, but a fitted filter scores with the values it
    was fitted with (:attr:`alpha_`, :attr:`sharpen_`; saved with it): ``set_params`` takes
    effect at the next ``fit``, as for every estimator. To try other values on a fitted filter
    without refitting (a search over them), call :meth:`refilter`.
    """

    kind = "gfcf"

    def __init__(self, *, n_factors: int = 256, alpha: float = 0.1, sharpen: float = 1.5,
                 svd_iters: int = 4, materialize: bool | str = "auto",
                 recency: float | None = None, device: str = "auto",
                 random_state: int | None = None) -> None:
        self.n_factors = n_factors
        self.alpha = alpha
        self.sharpen = sharpen
        self.svd_iters = svd_iters
        self.materialize = materialize
        self.recency = recency
        self.device = device
        self.random_state = random_state

    def _validate(self) -> None:
        for name in ("n_factors", "svd_iters"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < (1 if name == "n_factors" else 0):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not (isinstance(self.materialize, bool | np.bool_) or self.materialize == "auto"):
            raise ConfigError(f"materialize must be True, False or 'auto', got "
                              f"{self.materialize!r}")
        for name in ("alpha", "sharpen"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {v!r}")

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self.seed_ = resolve_seed(self.random_state)
        self.device_ = resolve_device(self.device)
        start = time.perf_counter()
        with threads(self._threads):
            r = self._train_matrix()
            du = np.asarray(r.sum(axis=1)).ravel()
            di = np.asarray(r.sum(axis=0)).ravel()
            inv_u = np.where(du > 0, 1 / np.sqrt(np.maximum(du, 1e-12)), 0.0)
            self.item_degree_sqrt_ = np.sqrt(di).astype(np.float32)
            inv_i = np.where(di > 0, 1 / np.maximum(self.item_degree_sqrt_, 1e-12), 0.0)
            self.norm_ = sp.csr_matrix(sp.diags(inv_u) @ r @ sp.diags(inv_i), dtype=np.float32)
            k = min(int(self.n_factors), min(self.norm_.shape))
            if self.alpha > 0 and k >= 1:
                # svd_lowrank draws from the global generator: seed it inside a fork, so the
                # caller's random state is left as it was
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed_)
                    _, s, v = torch.svd_lowrank(_torch_csr(self.norm_, torch.device("cpu")),
                                                q=min(k + 16, min(self.norm_.shape)),
                                                niter=int(self.svd_iters))
                self.singular_values_ = s[:k].contiguous()
                self.item_basis_ = v[:, :k].contiguous().to(self.device_)
            else:
                self.singular_values_ = torch.zeros(0)
                self.item_basis_ = torch.zeros(len(di), 0, device=self.device_)
        self.alpha_, self.sharpen_ = float(self.alpha), float(self.sharpen)
        self._prepare()
        self.fit_seconds_ = time.perf_counter() - start

    def _prepare(self) -> None:
        r"""Device copies of the operators used for scoring.

        Scores are linear in the interaction row, so the sharpening polynomial :math:`p` can be
        moved onto each part of :math:`s_0`: :math:`s = r\tilde P p(\tilde P) + \alpha\, (r
        D_I^{-1/2} V)\,(V^\top D_I^{1/2} p(\tilde P))`. The right factor of the low-pass
        part is sharpened here, once (``n_factors`` rows); scoring then pays one dense product
        for it and propagates only the linear part.
        """
        self._a = _torch_csr(self.norm_, self.device_)
        self._at = _torch_csr(self.norm_.T.tocsr(), self.device_)
        d = self.item_degree_sqrt_
        inv = np.where(d > 0, 1 / np.maximum(d, 1e-12), 0.0).astype(np.float32)
        basis = self.item_basis_
        self._left = torch.as_tensor(inv, device=self.device_)[:, None] * basis  # D^-1/2 V
        right = basis * torch.as_tensor(d, device=self.device_)[:, None]  # (V^T D^1/2)^T
        with threads(self._threads):
            self._right = self._sharpen_t(right).T.contiguous()  # (V^T D^1/2) p(P)
        self._dense: torch.Tensor | None = None
        self.materialized_ = self._should_materialize()
        if self.materialized_:
            self._dense = self._materialize()

    def _should_materialize(self) -> bool:
        if self.materialize != "auto":
            return bool(self.materialize)
        from collabkit.models.implicit.ease import _available_bytes

        n = len(self.item_vocab_)
        return self.sharpen_ > 0 and 4 * n * n <= 0.5 * _available_bytes()

    def refilter(self, *, alpha: float | None = None, sharpen: float | None = None
                 ) -> GraphFilter:
        """Score with another ``alpha`` or ``sharpen`` without refitting (returns ``self``).

        Both act only when scoring, so a search over them needs one fit per ``n_factors``.
        The parameters (``get_params``) and the fitted values (:attr:`alpha_`,
        :attr:`sharpen_`) both change, so a save afterwards is consistent.

        Raises
        ------
        NotFittedError
            The filter is not fitted.
        ConfigError
            A value is not a number >= 0, or ``alpha > 0`` is asked of a filter fitted with
            ``alpha=0``, which computed no low-pass part: fit it again.
        """
        self.check_fitted()
        new = {"alpha": self.alpha_ if alpha is None else alpha,
               "sharpen": self.sharpen_ if sharpen is None else sharpen}
        for name, v in new.items():
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {v!r}")
        if new["alpha"] > 0 and not self.item_basis_.shape[1]:
            raise ConfigError("this filter was fitted with alpha=0, so it has no low-pass part "
                              f"to weigh by alpha={new['alpha']}; fit it again with alpha > 0")
        self.alpha, self.sharpen = new["alpha"], new["sharpen"]
        self.alpha_, self.sharpen_ = float(new["alpha"]), float(new["sharpen"])
        self._prepare()
        return self

    def _materialize(self, block: int = _COLS) -> torch.Tensor:
        """The dense filter: row ``i`` holds the scores of the one-item row ``e_i``."""
        from collabkit.models.implicit.ease import _available_bytes

        n = len(self.item_vocab_)
        need, limit = 4 * n * n, 0.8 * _available_bytes()
        if need > limit:
            raise ConfigError(f"materialize=True needs {need / 1e9:.1f} GB for {n} items and "
                              f"{limit / 1e9:.1f} GB is available; use materialize=False")
        dense = torch.empty(n, n, device=self.device_)
        for s in range(0, n, block):
            rows = np.arange(s, min(n, s + block))
            eye = sp.csr_matrix((np.ones(len(rows), np.float32), (rows - s, rows)),
                                shape=(len(rows), n))
            dense[s : s + len(rows)] = self._filter_rows(eye)
        return dense

    def _propagate_t(self, yt: torch.Tensor) -> torch.Tensor:
        r""":math:`\tilde P y^\top` for a block kept transposed (items x rows): two
        sparse-dense products through :math:`\tilde R`, no transposes in between."""
        return torch.sparse.mm(self._at, torch.sparse.mm(self._a, yt))

    def _sharpen_t(self, yt: torch.Tensor) -> torch.Tensor:
        """``p(P) y^T`` (the RK4 step, as its Taylor sum) for a transposed block; ``y^T`` when
        ``sharpen`` is 0."""
        t = self.sharpen_
        if t <= 0:
            return yt
        out, term = yt.clone(), yt
        for j in range(1, 5):
            term = self._propagate_t(term) * (-t / j)
            out += term
        return out

    @torch.no_grad()
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        x = sp.csr_matrix(x, dtype=np.float32)
        if getattr(self, "_dense", None) is not None:
            with threads(self._threads):
                return torch.sparse.mm(_torch_csr(x, self.device_), self._dense)
        return self._filter_rows(x)

    @torch.no_grad()
    def _filter_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        """The filter applied to interaction rows ``x``, by sparse products (no dense filter).

        Rows are taken ``_COLS`` at a time, transposed (items x rows) so that every product
        reads contiguous rows; the result is one (rows x items) float32 matrix.
        """
        n, n_items = x.shape
        out = torch.empty(n, n_items, device=self.device_)
        with threads(self._threads):
            for s in range(0, n, _COLS):
                xb = x[s : s + _COLS]
                # the first product has two sparse sides: R~ r^T costs what r's items touch
                z = torch.as_tensor((self.norm_ @ xb.T).toarray(), device=self.device_)
                lin = self._sharpen_t(torch.sparse.mm(self._at, z))  # (r P p(P))^T
                if self.alpha_ > 0 and self.item_basis_.shape[1]:
                    xl = _torch_csr(xb, self.device_) @ self._left  # sparse rows: cheap
                    torch.mm(xl, self._right, out=out[s : s + xb.shape[0]])
                    out[s : s + xb.shape[0]].mul_(self.alpha_).add_(lin.T)
                else:
                    out[s : s + xb.shape[0]] = lin.T
        return out

    # -------------------------------------------------------------- persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {**self._csr_tensors("gfcf.norm", self.norm_),
                "gfcf.item_basis": self.item_basis_.cpu().contiguous(),
                "gfcf.singular_values": self.singular_values_.cpu().contiguous(),
                "gfcf.item_degree_sqrt": torch.as_tensor(self.item_degree_sqrt_),
                **self._recency_tensors()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        shape = (len(self.user_vocab_), len(self.item_vocab_))
        self.norm_ = self._csr_from_tensors("gfcf.norm", tensors, shape)
        self.item_basis_ = tensors["gfcf.item_basis"].to(self.device_)
        self.singular_values_ = tensors["gfcf.singular_values"]
        self.item_degree_sqrt_ = tensors["gfcf.item_degree_sqrt"].numpy()
        self.seed_ = extra.get("seed")
        # files from before the fitted values were saved scored with the parameters
        self.alpha_ = float(extra.get("fitted_alpha", self.alpha))
        self.sharpen_ = float(extra.get("fitted_sharpen", self.sharpen))
        self._load_common(extra)
        self._load_recency(tensors, extra)
        self._prepare()

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "seed": self.seed_, "fitted_alpha": self.alpha_,
                "fitted_sharpen": self.sharpen_}
