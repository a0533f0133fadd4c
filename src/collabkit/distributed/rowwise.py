r"""The row-wise sharded tier: user and item tables split by rows across ranks (issue 15).

For tables that do not fit one rank. The model is BiasedMF's linear form,
:math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i` (:math:`\mu` the global mean, fixed),
with each table stored packed as rows ``(p_u, b_u)`` and ``(q_i, b_i)``.

*Why collectives and not TorchRec.* TorchRec is not installed here, its CPU build is pinned to
one torch ABI (fbgemm 1.X against torch 2.(X+5); "undefined symbol" reports in torchrec#551,
#557, #770) and it refuses fused Adam on CPU. What the tier needs is small: an all-to-all of
ids and one of rows for each lookup, and the reverse for gradient rows. ``torch.distributed``
does that on gloo and NCCL with no extra dependency (:mod:`collabkit.distributed.shards`).

*Layout.* Dense ids are permuted once, from the seed, so popular items spread across ranks
even when they cluster in id order. Ratings move to the rank owning their user's row: user
lookups stay local, only item rows cross ranks (the distinct items of each batch).

*Same model at any world size.* Initial rows are drawn from the seed and the global row id
(:func:`~collabkit.distributed.shards.pinned_normal`); a rating's batch in an epoch is a hash
of the seed, the epoch and its (user, item) rows, so a global batch holds the same ratings
at every world size; the loss is the global batch's mean (its size all-reduced once per
epoch). Every rank steps through every batch, empty or not: uneven shards cannot hang.

*Optimizers* keep their state with the rows (same shard): ``"sgd"`` and ``"adagrad"`` are
exact (a row without gradient is left alone by both, so the sparse update equals
``torch.optim.SGD`` / ``Adagrad`` on the dense table); ``"adam"`` is exact with respect to
``torch.optim.SparseAdam`` (moments of untouched rows are not decayed), which is not dense
Adam. AdamW is not offered: its decay touches every row every step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.distributed.assemble import adopt, gather_interactions
from collabkit.distributed.group import World, world
from collabkit.distributed.shards import (
    Route,
    RowLayout,
    all_reduce_sum,
    check_indices,
    exchange,
    gather_rows,
    hash_uniform,
    pinned_normal,
)
from collabkit.errors import ConfigError, ModelFitError

if TYPE_CHECKING:
    from collabkit.distributed.tiers import TrainJob
    from collabkit.models.base import Recommender

__all__ = ["RowwiseConfig", "RowwiseState", "RowOptimizer", "fit_rowwise", "evaluate_rowwise",
           "gather_tables", "run"]

Optimizer = Literal["sgd", "adagrad", "adam"]


@dataclass(frozen=True)
class RowwiseConfig:
    """Settings of the row-wise tier (one seed fixes the permutation, init and batches)."""

    n_factors: int = 16
    epochs: int = 3
    batch_size: int = 1024
    """Ratings per *global* batch (on average: a batch is a hash bucket)."""
    lr: float = 0.05
    optimizer: Optimizer = "adagrad"
    wd: float = 0.0
    """L2 on the rows a rating touches, per rating."""
    init_std: float = 0.05
    seed: int = 0

    def validate(self) -> None:
        for name in ("n_factors", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.optimizer not in ("sgd", "adagrad", "adam"):
            raise ConfigError(f"optimizer must be 'sgd', 'adagrad' or 'adam' in the row-wise "
                              f"tier, got {self.optimizer!r}")
        if not self.lr > 0 or self.wd < 0 or not self.init_std > 0:
            raise ConfigError(f"lr and init_std must be > 0 and wd >= 0, got lr={self.lr!r}, "
                              f"wd={self.wd!r}, init_std={self.init_std!r}")


class RowOptimizer:
    """SGD, Adagrad or SparseAdam on the rows of one shard, state kept beside the rows."""

    def __init__(self, kind: Optimizer, lr: float, shape: tuple[int, int],
                 betas: tuple[float, float] = (0.9, 0.999), eps: float | None = None) -> None:
        self.kind, self.lr, self.betas = kind, lr, betas
        self.eps = eps if eps is not None else (1e-10 if kind == "adagrad" else 1e-8)
        self.steps = 0
        self.sq = torch.zeros(shape) if kind in ("adagrad", "adam") else None
        self.m = torch.zeros(shape) if kind == "adam" else None

    @torch.no_grad()
    def step(self, table: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update ``table[rows]`` (distinct rows) with ``grad``; every rank calls it every batch."""
        self.steps += 1
        if self.kind == "sgd":
            table.index_add_(0, rows, grad, alpha=-self.lr)
            return
        assert self.sq is not None
        if self.kind == "adagrad":  # torch.optim.Adagrad, lr_decay 0, initial accumulator 0
            s = self.sq[rows] + grad * grad
            self.sq[rows] = s
            table[rows] -= self.lr * grad / (s.sqrt() + self.eps)
            return
        assert self.m is not None  # torch.optim.SparseAdam
        b1, b2 = self.betas
        m = self.m[rows] * b1 + grad * (1 - b1)
        v = self.sq[rows] * b2 + grad * grad * (1 - b2)
        self.m[rows], self.sq[rows] = m, v
        size = self.lr * (1 - b2 ** self.steps) ** 0.5 / (1 - b1 ** self.steps)
        table[rows] -= size * m / (v.sqrt() + self.eps)


@dataclass
class RowwiseState:
    """One rank's shards after :func:`fit_rowwise`; rows are in permuted order."""

    users: RowLayout
    items: RowLayout
    user_perm: np.ndarray
    item_perm: np.ndarray
    user_table: torch.Tensor
    item_table: torch.Tensor
    mu: float
    config: RowwiseConfig
    history: list[dict[str, float]] = field(default_factory=list)
    bytes_moved: int = 0
    """Bytes this rank sent to other ranks for item rows in training (ids, rows, gradients)."""


def _batch_of(cfg: RowwiseConfig, epoch: int, u: np.ndarray, i: np.ndarray, n_items: int,
              n_batches: int) -> np.ndarray:
    keys = u.astype(np.uint64) * np.uint64(max(1, n_items)) + i.astype(np.uint64)
    return (hash_uniform(cfg.seed, 1000 + epoch, keys) * n_batches).astype(np.int64)


def _to_user_owners(st: RowwiseState, u: np.ndarray, i: np.ndarray,
                    r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratings (vocabulary ids) as permuted rows, moved to the rank owning their user row."""
    check_indices("users", u, len(st.user_perm))
    check_indices("items", i, len(st.item_perm))
    ur, ir = st.user_perm[u], st.item_perm[i]
    ur, ir, rr = exchange(st.users.owner(ur), ur, ir, r.astype(np.float32))
    return ur, ir, rr


def _predict(U: torch.Tensor, V: torch.Tensor, mu: float) -> torch.Tensor:
    return mu + (U[:, :-1] * V[:, :-1]).sum(-1) + U[:, -1] + V[:, -1]


def _batch_step(st: RowwiseState, opts: tuple[RowOptimizer, RowOptimizer], ur: np.ndarray,
                ir: np.ndarray, rr: np.ndarray, n_global: float) -> float:
    """One global batch on this rank's share; returns its summed squared error."""
    cfg, ulo = st.config, st.users.range(world().rank)[0]
    uniq_u, inv_u = np.unique(ur - ulo, return_inverse=True)
    uniq_i, inv_i = np.unique(ir, return_inverse=True)
    route = Route(uniq_i, st.items)
    Ib = route.fetch(st.item_table).requires_grad_(True)
    Ub = st.user_table[torch.from_numpy(uniq_u)].requires_grad_(True)
    U, V = Ub[torch.from_numpy(inv_u)], Ib[torch.from_numpy(inv_i)]
    err = _predict(U, V, st.mu) - torch.from_numpy(rr)
    sse = err.square().sum()
    loss = sse + cfg.wd * (U.square().sum() + V.square().sum())
    if len(rr):
        (loss / n_global).backward()
    gi = Ib.grad if Ib.grad is not None else torch.zeros_like(Ib)
    rows_i, grad_i = route.push(gi)
    opts[1].step(st.item_table, rows_i, grad_i)
    gu = Ub.grad if Ub.grad is not None else torch.zeros_like(Ub)
    opts[0].step(st.user_table, torch.from_numpy(uniq_u), gu)
    st.bytes_moved += route.bytes_sent(Ib.shape[1])
    return float(sse.detach())


def fit_rowwise(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
                n_items: int, config: RowwiseConfig) -> RowwiseState:
    """Train the sharded model on this rank's ratings (any subset: they are moved to the rank
    owning their user). ``users``/``items`` are vocabulary indices shared by all ranks.
    Call on every rank with the same ``n_users``, ``n_items`` and ``config``."""
    config.validate()
    w = world()
    users_l, items_l = RowLayout(n_users, w.size), RowLayout(n_items, w.size)
    rng = np.random.default_rng(config.seed)
    st = RowwiseState(users_l, items_l, rng.permutation(n_users), rng.permutation(n_items),
                      torch.empty(0), torch.empty(0), 0.0, config)
    d = config.n_factors + 1
    for which, layout, stream in (("user", users_l, 1), ("item", items_l, 2)):
        lo, hi = layout.range(w.rank)
        t = pinned_normal(config.seed, stream, np.arange(lo, hi), d, config.init_std)
        t[:, -1] = 0.0  # biases start at 0
        setattr(st, f"{which}_table", t)
    ur, ir, rr = _to_user_owners(st, users, items, ratings)
    n_all, total = all_reduce_sum([float(len(rr)), float(rr.astype(np.float64).sum())])
    if n_all == 0:
        raise ModelFitError("no ratings on any rank: there is nothing to train on")
    st.mu = total / n_all
    opts = (RowOptimizer(config.optimizer, config.lr, (len(st.user_table), d)),
            RowOptimizer(config.optimizer, config.lr, (len(st.item_table), d)))
    n_batches = max(1, int(np.ceil(n_all / config.batch_size)))
    for epoch in range(config.epochs):
        b = _batch_of(config, epoch, ur, ir, n_items, n_batches)
        order = np.argsort(b, kind="stable")
        local = np.bincount(b, minlength=n_batches)
        sizes = all_reduce_sum(local.astype(np.float64).tolist())
        ptr = np.concatenate([[0], np.cumsum(local)])
        sse = 0.0
        for k in range(n_batches):  # every rank, every batch: collectives stay matched
            take = order[ptr[k]: ptr[k + 1]]
            sse += _batch_step(st, opts, ur[take], ir[take], rr[take], max(1.0, sizes[k]))
        (sse_all,) = all_reduce_sum([sse])
        mse = sse_all / n_all
        if not np.isfinite(mse):
            raise ModelFitError(f"row-wise training diverged in epoch {epoch + 1} (training "
                                f"MSE {mse}); lower lr (now {config.lr:g})")
        st.history.append({"epoch": epoch + 1, "train_loss": mse})
    return st


@torch.no_grad()
def evaluate_rowwise(st: RowwiseState, users: np.ndarray, items: np.ndarray,
                     ratings: np.ndarray, rating_range: tuple[float, float]) -> float:
    """RMSE over every rank's share of a test set (vocabulary indices), predictions clipped
    to ``rating_range``; the same number on every rank."""
    ur, ir, rr = _to_user_owners(st, users, items, ratings)
    ulo = st.users.range(world().rank)[0]
    uniq_i, inv_i = np.unique(ir, return_inverse=True)
    V = Route(uniq_i, st.items).fetch(st.item_table)[torch.from_numpy(inv_i)]
    U = st.user_table[torch.from_numpy(ur - ulo)]
    pred = _predict(U, V, st.mu).double().clamp(*rating_range)
    sse = float((pred - torch.from_numpy(rr).double()).square().sum())
    n, sse_all = all_reduce_sum([float(len(rr)), sse])
    return float(np.sqrt(sse_all / max(1.0, n)))


def gather_tables(st: RowwiseState) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Both whole tables on rank 0, rows back in vocabulary order (None on other ranks)."""
    U, V = gather_rows(st.user_table), gather_rows(st.item_table)
    if U is None or V is None:
        return None
    return U[torch.from_numpy(st.user_perm)], V[torch.from_numpy(st.item_perm)]


def run(job: TrainJob, w: World) -> Recommender | None:
    """The tier's rank entry point (:data:`~collabkit.distributed.tiers.RankEntry`): a
    linear ``BiasedMF`` (kind ``"dot"``, ``y_range=None``) on rank 0, None elsewhere.

    ``job.params``: ``n_factors``, ``epochs``, ``lr``, ``batch_size``, ``random_state`` and a
    numeric ``wd`` (per-rating L2 here); ``job.options``: ``optimizer`` (``"sgd"``,
    ``"adagrad"``, ``"adam"``), ``wd``, ``init_std``. The CLI's defaults for this tier are
    Adagrad with ``lr=0.1, wd=0.1`` (ml-100k u1, 50 factors, 5 epochs: test RMSE 0.926).
    """
    p, o, data = job.params, job.options, job.train
    cfg = RowwiseConfig(n_factors=int(p.get("n_factors", 16)), epochs=int(p.get("epochs", 3)),
                        batch_size=int(p.get("batch_size", 1024)), lr=float(p.get("lr", 0.05)),
                        optimizer=o.get("optimizer", "adagrad"),
                        wd=float(o.get("wd", p["wd"] if isinstance(p.get("wd"), (int, float))
                                       else 0.0)),
                        init_std=float(o.get("init_std", 0.05)),
                        seed=int(p.get("random_state") or 0))
    start = time.perf_counter()
    st = fit_rowwise(data.users, data.items, data.ratings, len(data.user_vocab),
                     len(data.item_vocab), cfg)
    return to_model(st, data, time.perf_counter() - start)


def to_model(st: RowwiseState, part: Interactions, seconds: float | None = None
             ) -> Recommender | None:
    """Rank 0's ``BiasedMF`` from every rank's shards and ratings (collective; None elsewhere)."""
    from collabkit.models.biased_mf import BiasedMF

    tables, data = gather_tables(st), gather_interactions(part)
    if tables is None or data is None:
        return None
    U, V = tables
    cfg, k = st.config, st.config.n_factors
    model = BiasedMF(n_factors=k, epochs=cfg.epochs, lr=cfg.lr, wd=cfg.wd,
                     batch_size=cfg.batch_size, auto_batch=False, y_range=None,
                     random_state=cfg.seed, refit_users=False)

    def state(keep_u: np.ndarray, keep_i: np.ndarray) -> tuple[dict[str, torch.Tensor],
                                                                dict[str, Any]]:
        u, i = U[torch.from_numpy(keep_u)], V[torch.from_numpy(keep_i)]
        tensors = {"module.user_factors.weight": u[:, :k].contiguous(),
                   "module.item_factors.weight": i[:, :k].contiguous(),
                   "module.user_bias.weight": u[:, k:].contiguous(),
                   "module.item_bias.weight": i[:, k:].contiguous(),
                   "module.global_bias": torch.tensor(st.mu, dtype=torch.float32)}
        extra = {"seed": cfg.seed, "history": st.history, "fit_seconds": seconds,
                 "batch_size_used": cfg.batch_size, "lr_used": cfg.lr, "wd_used": cfg.wd}
        return tensors, extra

    return adopt(model, data, state)
