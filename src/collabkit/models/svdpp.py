"""SVDpp: Koren's SVD++ (explicit factors plus implicit feedback), vectorised in torch."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models import capabilities as cap
from collabkit.models.base import Recommender
from collabkit.runtime import threads
from collabkit.seeds import derive_seed, numpy_rng, resolve_seed, torch_generator
from collabkit.train.rowsolve import RowPenalty
from collabkit.train.runner import EpochOutcome, check_not_diverged, run_epochs
from collabkit.train.sparse_ops import csr_matrix
from collabkit.train.validation import valid_pairs

__all__ = ["SVDpp", "SVDppModule"]


class _SpMM(torch.autograd.Function):
    """``F @ Y`` for a constant CSR ``F``; the backward uses a precomputed CSR of ``F^T``.

    (torch's own backward through a CSR product transposes ``F`` on every call, which is 50x
    slower than the product itself.)
    """

    @staticmethod
    def forward(ctx: Any, Y: torch.Tensor, F: torch.Tensor, Ft: torch.Tensor) -> torch.Tensor:
        ctx.Ft = Ft
        return F @ Y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return ctx.Ft @ grad, None, None


class SVDppModule(nn.Module):
    r"""The SVD++ scorer: :math:`\mu + b_u + b_i + q_i^\top (p_u + z_u)`.

    Parameters ``p``, ``q``, ``y`` (the implicit factors), ``b_user``, ``b_item``; the mean
    :math:`\mu` is a buffer.

    :math:`z_u = |N(u)|^{-1/2} \sum_{j \in N(u)} y_j` is one sparse-dense product for all
    users at once, ``F @ Y`` with ``F`` the row-normalised CSR of the items each user rated.
    """

    mean: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, n_users: int, n_items: int, n_factors: int, mean: float) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(n_users, n_factors))
        self.q = nn.Parameter(torch.zeros(n_items, n_factors))
        self.y = nn.Parameter(torch.zeros(n_items, n_factors))
        self.b_user = nn.Parameter(torch.zeros(n_users))
        self.b_item = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("mean", torch.tensor(float(mean)))

    def implicit(self, F: torch.Tensor, Ft: torch.Tensor) -> torch.Tensor:
        """:math:`z_u` of every user, shape ``(n_users, k)``; ``Ft`` is ``F`` transposed."""
        return _SpMM.apply(self.y, F, Ft)

    def forward(self, u: torch.Tensor, i: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Raw (unclipped) predictions for index pairs given all users' ``z``."""
        pu = self.p[u] + z[u]
        return (pu * self.q[i]).sum(-1) + self.b_user[u] + self.b_item[i] + self.mean


class SVDpp(Recommender, cap.FactorModel):
    r"""SVD++ (Koren, 2008): biased MF whose user vector adds the items the user rated.

    .. math::

        \hat r_{ui} = \operatorname{clip}\Big(\mu + b_u + b_i + q_i^\top \big(p_u +
        |N(u)|^{-1/2} \textstyle\sum_{j \in N(u)} y_j\big)\Big)

    Fitted by mini-batch Adam with a cosine-annealed learning rate on the MSE plus a
    per-rating L2 penalty (as Surprise's SGD does):
    :math:`\lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + \lVert z_u\rVert^2)
    + \lambda_b (b_u^2 + b_i^2)` for each rating in the batch. Each batch sums the implicit
    term of its own users only (one weighted bag sum over their rated items), with no Python
    loop over users.

    The defaults were chosen on validation rows carved from the ml-100k ``u1.base`` and
    ``u2.base`` (about 0.906 there; Bayesian :class:`~collabkit.models.bpmf._estimator.BayesianMF`
    reaches 0.877 on the same rows).

    Parameters
    ----------
    n_factors : int, default 30
    epochs : int, default 20
    lr : float, default 5e-3
        Initial Adam learning rate, annealed by cosine to ``lr / 100``.
    reg : float, default 0.1
        :math:`\lambda`, the L2 penalty on factors per rating.
    reg_bias : float, default 0.01
        :math:`\lambda_b`, the L2 penalty on biases per rating.
    batch_size : int, default 2048
    init_std : float, default 0.01
        Standard deviation of the normal initialisation of ``p``, ``q`` and ``y``.
    clip : bool, default True
        Clip predictions to the training rating range.
    n_threads : int or None, default 1
        Torch threads while training (restored afterwards); ``None`` keeps torch's setting.
    random_state : int or None
        Seed for initialisation and shuffling.

    Attributes
    ----------
    module_ : SVDppModule
    user_factors_ : torch.Tensor
        The effective user vectors :math:`p_u + z_u`, ``(n_users, k)``.
    item_factors_, user_bias_, item_bias_ : torch.Tensor
        :math:`q_i`, :math:`b_u`, :math:`b_i`. With ``user_factors_`` they make SVD++ a
        linear factor model to :meth:`fold_in` (which fits a new user's :math:`p_u + z_u`
        directly) and to :meth:`similar_items`.
    history_ : list of dict
        One :class:`~collabkit.train.runner.EpochStats` per epoch: ``epoch``, ``train_loss``
        (MSE), ``valid_rmse`` (None unless ``fit`` got ``valid``), ``lr``, ``seconds``.

    """

    kind = "svdpp"
    fold_in_exactness = cap.FoldInExactness(
        "population", 0.03, "fold-in fits the effective vector p_u + z_u under a Gaussian "
        "prior fitted to the trained vectors; 'matched' (SVD++'s own objective) reproduces "
        "only converged fits, and the contract's few Adam steps are far from converged")

    def __init__(self, *, n_factors: int = 30, epochs: int = 20, lr: float = 5e-3,
                 reg: float = 0.1, reg_bias: float = 0.01, batch_size: int = 2048,
                 init_std: float = 0.01, clip: bool = True, n_threads: int | None = 1,
                 random_state: int | None = None) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.batch_size = batch_size
        self.init_std = init_std
        self.clip = clip
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _validate(self) -> None:
        for name in ("n_factors", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "init_std"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be a positive number, got {v!r}")
        for name in ("reg", "reg_bias"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be >= 0, got {v!r}")
        nt = self.n_threads
        if nt is not None and (not isinstance(nt, int | np.integer) or nt < 1):
            raise ConfigError(f"n_threads must be a positive integer or None, got {nt!r}")

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        t0 = time.perf_counter()
        self.seed_ = resolve_seed(self.random_state)
        with threads(self.n_threads):
            self._train(data, u, i, valid)
        self.fit_seconds_ = time.perf_counter() - t0

    def _train(self, data: Interactions, u: np.ndarray, i: np.ndarray,
               valid: Interactions | None) -> None:
        k = int(self.n_factors)
        m = SVDppModule(len(self.user_vocab_), len(self.item_vocab_), k, self.global_mean_)
        assert self.seed_ is not None, "fit() sets seed_ before training"
        rng = numpy_rng(self.seed_)
        with torch.no_grad():
            for p in (m.p, m.q, m.y):
                p.copy_(torch.as_tensor(rng.normal(0.0, self.init_std, p.shape)))
        self._build_implicit()
        bags = _Bags(self.seen_indptr_, self.seen_indices_, self.implicit_matrix_,
                     self.implicit_matrix_t_)
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        y = torch.tensor(data.ratings, dtype=torch.float32)
        check = None if valid is None else _valid_pairs(self, valid)
        n, bs, epochs = len(y), int(self.batch_size), int(self.epochs)
        opt = torch.optim.Adam(m.parameters(), lr=float(self.lr))
        steps = epochs * math.ceil(n / bs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=self.lr / 100)
        gen = torch_generator(derive_seed(self.seed_, "shuffle"))

        def epoch_fn(epoch: int) -> EpochOutcome:
            perm = torch.randperm(n, generator=gen)
            loss_sum = torch.zeros((), dtype=torch.float64)
            for s in range(0, n, bs):
                idx = perm[s : s + bs]
                mse, loss = self._batch_loss(m, ut[idx], it[idx], y[idx], bags)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += mse.detach().double() * len(idx)
            train_loss = loss_sum.item() / n
            vr = None
            if check is not None and math.isfinite(train_loss):
                self.module_ = m
                self._cache()
                pred = torch.as_tensor(self._predict_idx(check[0], check[1]))
                vr = float((pred - check[2]).square().mean().sqrt())
            return EpochOutcome(train_loss, vr, float(sched.get_last_lr()[0]))

        result = run_epochs(epoch_fn, epochs, remedy=self._remedy())
        if result.history:
            check_not_diverged(result.history[-1].train_loss, epochs, data.ratings,
                               self._remedy())
        self.module_ = m.eval()
        self._cache()
        self.history_ = [vars(h) for h in result.history]

    def _remedy(self) -> str:
        return (f"Lower the learning rate (lr={self.lr:g}) or raise the regularisation "
                f"(reg={self.reg:g}).")

    def _batch_loss(self, m: SVDppModule, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor,
                    bags: _Bags) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch MSE and the MSE plus the per-rating L2 penalty.

        :math:`z_u` is computed for the batch's own users only (issue 14: it used to be every
        user's, over every rating, at every batch), unless they hold most of the ratings.
        """
        users, inverse = torch.unique(u, return_inverse=True)
        zr = bags.implicit(m, users)[inverse]  # z_u of each rating's user
        pu = m.p[u] + zr
        mse = ((pu * m.q[i]).sum(-1) + m.b_user[u] + m.b_item[i] + m.mean - y).square().mean()
        penalty = (float(self.reg) * (m.p[u].square().sum(1) + m.q[i].square().sum(1)
                                      + zr.square().sum(1))
                   + float(self.reg_bias) * (m.b_user[u].square() + m.b_item[i].square()))
        return mse, mse + penalty.mean()

    def _build_implicit(self) -> None:
        """The row-normalised CSR ``F`` of rated items, rebuilt from the seen-items CSR."""
        indptr = torch.as_tensor(self.seen_indptr_, dtype=torch.int64)
        cols = torch.as_tensor(self.seen_indices_, dtype=torch.int64)
        counts = indptr[1:] - indptr[:-1]
        rows = torch.repeat_interleave(torch.arange(len(counts)), counts)
        vals = counts.clamp_min(1).float().rsqrt()[rows]
        n_users, n_items = len(self.user_vocab_), len(self.item_vocab_)
        self.implicit_matrix_ = csr_matrix(rows, cols, vals, n_users, n_items)
        self.implicit_matrix_t_ = csr_matrix(cols, rows, vals, n_items, n_users)

    @torch.no_grad()
    def _cache(self) -> None:
        """User vectors :math:`p_u + z_u`, computed once for scoring."""
        m = self.module_
        self.user_factors_ = m.p.detach() + self.implicit_matrix_ @ m.y.detach()
        self.item_factors_ = m.q.detach()
        self.user_bias_ = m.b_user.detach()
        self.item_bias_ = m.b_item.detach()

    # ------------------------------------------------------------------ capabilities
    def factor_tables(self) -> cap.FactorTables:
        """Effective user vectors :math:`p_u + z_u`, linear, clipped only when ``clip``."""
        self.check_fitted()
        lo, hi = self.rating_range_
        return cap.FactorTables(self.user_factors_, self.user_bias_, self.item_factors_,
                            self.item_bias_, float(self.module_.mean),
                            None, (lo, hi) if self.clip and lo < hi else None)

    def foldin_penalty(self, folded: cap.Side, center: np.ndarray,
                       rated: cap.FoldRows | None = None) -> RowPenalty:
        r"""Training's per-rating L2: each of a row's :math:`n` ratings paid ``reg`` on
        :math:`p_u` and ``reg_bias`` on :math:`b_u`, so :math:`\Lambda = n\,\mathrm{diag}
        (\lambda, \dots, \lambda, \lambda_b)`. Fold-in fits the effective vector
        :math:`v = p_u + z_u`, so for users the centre is :math:`[z_u; 0]`, with :math:`z_u =
        |N(u)|^{-1/2} \sum_{j \in N(u)} y_j` over the rated items: :math:`\lVert p_u
        \rVert^2 = \lVert v - z_u \rVert^2` (``center`` is then not used; training's
        :math:`\lambda \lVert z_u \rVert^2` does not depend on the row)."""
        weights = np.append(np.full(int(self.n_factors), float(self.reg)),
                            float(self.reg_bias))
        if folded == "users" and rated is not None:
            y = self.module_.y.detach().double().cpu().numpy()
            z = np.zeros((rated.n_rows, y.shape[1]))
            np.add.at(z, rated.rows, y[rated.other])
            counts = np.bincount(rated.rows, minlength=rated.n_rows)
            z /= np.sqrt(np.maximum(counts, 1))[:, None]
            center = np.column_stack([z, np.zeros(rated.n_rows)])
        return RowPenalty("count", 1.0, center, power=1.0, weights=weights)

    # ------------------------------------------------------------------ scoring
    def _finish(self, raw: torch.Tensor) -> torch.Tensor:
        if not self.clip:
            return raw
        lo, hi = self.rating_range_
        return raw.clamp(lo, hi)

    @torch.no_grad()
    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        m = self.module_
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        raw = ((self.user_factors_[ut] * self.item_factors_[it]).sum(-1) + self.user_bias_[ut]
               + self.item_bias_[it] + m.mean)
        return self._finish(raw).double().numpy()

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        m = self.module_
        ut = torch.as_tensor(u)
        raw = (self.user_factors_[ut] @ self.item_factors_.T + self.user_bias_[ut, None]
               + self.item_bias_[None, :] + m.mean)
        return self._finish(raw)

    # ------------------------------------------------------------------ persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"module.{k}": v.detach().cpu() for k, v in self.module_.state_dict().items()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        n_users, k = state["p"].shape
        m = SVDppModule(n_users, state["q"].shape[0], k, float(state["mean"]))
        m.load_state_dict(state)
        self.module_ = m.eval()
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self.fit_seconds_ = extra.get("fit_seconds")
        self._build_implicit()
        self._cache()

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed_, "history": self.history_, "fit_seconds": self.fit_seconds_}


class _Bags:
    """The items each user rated (CSR), to sum :math:`|N(u)|^{-1/2} \\sum_j y_j` for some users."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, F: torch.Tensor,
                 Ft: torch.Tensor) -> None:
        self.F, self.Ft = F, Ft
        self.indptr = torch.as_tensor(indptr, dtype=torch.int64)
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.counts = self.indptr[1:] - self.indptr[:-1]
        self.weight = self.counts.clamp_min(1).float().rsqrt()

    def implicit(self, m: SVDppModule, users: torch.Tensor) -> torch.Tensor:
        """:math:`z_u` of ``users``, shape ``(len(users), k)``; differentiable in ``m.y``.

        When those users rated more than half of all items rated, the product for every user
        (``F @ y``, one sparse kernel) is cheaper than gathering their bags."""
        c = self.counts[users]
        ends = torch.cumsum(c, 0)
        if 2 * int(ends[-1]) > len(self.indices):
            return m.implicit(self.F, self.Ft)[users]
        y = m.y
        pos = torch.repeat_interleave(self.indptr[users] - ends + c, c) + torch.arange(
            int(ends[-1]) if len(ends) else 0)
        w = torch.repeat_interleave(self.weight[users], c)
        return torch.nn.functional.embedding_bag(self.indices[pos], y, ends - c, mode="sum",
                                                 per_sample_weights=w)


def _valid_pairs(model: Recommender, valid: Interactions
                 ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Dense index pairs and ratings of the ``valid`` rows whose user and item are known."""
    vu, vi, vr, _ = valid_pairs(model.user_vocab_, model.item_vocab_, valid)
    return vu, vi, torch.tensor(vr, dtype=torch.float64)
