"""Explicit ALS and iALS across ranks: each rank solves a block of rows (issue 15, part 2).

Spark's blocked ALS on ``torch.distributed`` collectives. Users and items are split into
contiguous blocks of rows, one per rank (:class:`~collabkit.distributed.shards.RowLayout`).
The ratings are held twice: once moved to the rank owning their user, once to the rank
owning their item (Spark's in/out blocks). A half-sweep solves every row of this rank's block
against the other side's rows: the smaller side is all-gathered whole (each rank holds it for
one half-sweep), the larger one is fetched by all-to-all, only the distinct rows the block's
ratings touch (Spark sends each factor once to each block that needs it); then roles swap.
iALS's Gram matrix of the larger side is the all-reduced sum of the blocks' Grams. The per-row
solvers are the one-process models' own (:func:`collabkit.models.als.solve_rows`,
:func:`collabkit.models.implicit.ials.solve_implicit_rows`) and the initial tables come from
the same seeded generator, so 1, 2 or 4 ranks produce the factors a one-process ``fit`` does
(to rounding; when the shared vocabularies hold only ids with training ratings, as ``fit``'s
do). Every rank draws the whole initial tables once and keeps its block (a transient
``n x k``); rank 0 gathers the blocks at the end to build the model.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.distributed.assemble import adopt, gather_interactions
from collabkit.distributed.group import World, world
from collabkit.distributed.shards import (
    Route,
    RowLayout,
    all_gather_rows,
    all_reduce_,
    all_reduce_sum,
    broadcast_,
    check_indices,
    exchange,
    gather_rows,
)
from collabkit.errors import ConfigError, ModelFitError
from collabkit.models.als import BiasedALS, _Side, solve_rows
from collabkit.models.implicit._base import csr_from_ids
from collabkit.models.implicit.ials import ImplicitALS, solve_implicit_rows
from collabkit.runtime import resolve_device
from collabkit.seeds import resolve_seed, torch_generator

if TYPE_CHECKING:
    from collabkit.distributed.tiers import TrainJob
    from collabkit.models.base import Recommender

__all__ = ["Blocks", "fit_als", "fit_ials", "run"]


class _Other:
    """The other side's rows a block of ratings needs: the whole side when it is the smaller
    one (all-gathered), else only the distinct rows the block's ratings touch (all-to-all)."""

    def __init__(self, ids: np.ndarray, layout: RowLayout, whole: bool) -> None:
        self.layout, self.whole = layout, whole
        if whole:
            self.index, self.n, self.route = ids, layout.n, None
        else:
            uniq, self.index = np.unique(ids, return_inverse=True)
            self.n, self.route = len(uniq), Route(uniq, layout)

    def rows(self, local: torch.Tensor) -> torch.Tensor:
        """Rows ``0..n`` of the other side (positions in ``index``), from each rank's block."""
        if self.route is None:
            return all_gather_rows(local, self.layout)
        return self.route.fetch(local.cpu()).to(local.device)

    def gram(self, local: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """:math:`W^\top W` of the whole other side ``W`` (``rows`` when it is whole)."""
        if self.whole:
            return rows.T @ rows
        return all_reduce_(local.T @ local)


class Blocks:
    """This rank's two copies of the ratings, by user block and by item block, each with the
    other side's rows it needs (:class:`_Other`)."""

    def __init__(self, part: Interactions) -> None:
        w = world()
        self.nu, self.ni = len(part.user_vocab), len(part.item_vocab)
        self.users, self.items = RowLayout(self.nu, w.size), RowLayout(self.ni, w.size)
        self.ulo, self.uhi = self.users.range(w.rank)
        self.ilo, self.ihi = self.items.range(w.rank)
        u, i, r = part.users, part.items, part.ratings.astype(np.float32)
        check_indices("users", u, self.nu)
        check_indices("items", i, self.ni)
        bu, bi, self.r_by_user = exchange(self.users.owner(u), u, i, r)
        ib, ub, self.r_by_item = exchange(self.items.owner(i), i, u, r)
        self.u_rows, self.i_rows = bu - self.ulo, ib - self.ilo
        self.items_of_users = _Other(bi, self.items, whole=self.ni <= self.nu)
        self.users_of_items = _Other(ub, self.users, whole=self.nu < self.ni)


def _shared_seed(random_state: int | None) -> int:
    """The model's seed, the same on every rank (rank 0's draw when ``random_state`` is None)."""
    return int(broadcast_(torch.tensor([resolve_seed(random_state)], dtype=torch.int64)))


def _ones(n: int, dev: torch.device) -> torch.Tensor:
    return torch.ones(n, 1, device=dev)


def fit_als(b: Blocks, model: BiasedALS) -> tuple[torch.Tensor, torch.Tensor, float, float,
                                                  list[dict[str, Any]]]:
    """This rank's blocks of ``(p_u, b_u)`` and ``(q_i, b_i)``, the global mean, the ridge used
    and the sweeps' history (BiasedALS's maths, blocks over ranks)."""
    model._validate()
    dev, k = resolve_device(model.device), int(model.n_factors)
    r = b.r_by_user
    n, total = all_reduce_sum([float(len(r)), float(r.sum(dtype=np.float64))])
    if n == 0:
        raise ModelFitError("no ratings on any rank: there is nothing to train on")
    mu = total / n
    (ss,) = all_reduce_sum([float(((r.astype(np.float64) - mu) ** 2).sum())])
    reg_ = float(model.reg) * (math.sqrt(ss / n) or 1.0)
    ou, oi = b.items_of_users, b.users_of_items
    users = _Side(b.u_rows, ou.index, r, b.uhi - b.ulo, ou.n, dev)
    items = _Side(b.i_rows, oi.index, b.r_by_item, b.ihi - b.ilo, oi.n, dev)
    model.seed_ = _shared_seed(model.random_state)
    g = torch_generator(model.seed_)
    Xl = torch.zeros(b.uhi - b.ulo, k + 1, device=dev)
    Yl = torch.zeros(b.ihi - b.ilo, k + 1, device=dev)  # the one-process init, our rows of it
    Yl[:, :k] = torch.randn(b.ni, k, generator=g)[b.ilo: b.ihi].to(dev) * float(model.init_std)
    lam_u = reg_ * users.counts.float() ** float(model.reg_exponent)
    lam_i = reg_ * items.counts.float() ** float(model.reg_exponent)
    history, Yo = [], ou.rows(Yl)
    for sweep in range(int(model.epochs)):
        t0 = time.perf_counter()
        solve_rows(users, torch.cat([Yo[:, :k], _ones(ou.n, dev)], 1), mu + Yo[:, k], lam_u, Xl)
        Xo = oi.rows(Xl)
        solve_rows(items, torch.cat([Xo[:, :k], _ones(oi.n, dev)], 1), mu + Xo[:, k], lam_i, Yl)
        Yo = ou.rows(Yl)
        (sse,) = all_reduce_sum([BiasedALS._sse(users, Xl, Yo, mu)])
        if not math.isfinite(sse):
            raise ModelFitError(f"ALS produced non-finite factors in sweep {sweep + 1}; raise "
                                f"reg (now {model.reg:g})")
        history.append({"epoch": sweep + 1, "train_loss": sse / n, "valid_rmse": None,
                        "seconds": time.perf_counter() - t0})
    return Xl, Yl, mu, reg_, history


def fit_ials(b: Blocks, model: ImplicitALS) -> tuple[torch.Tensor, torch.Tensor,
                                                     list[dict[str, Any]]]:
    """This rank's blocks of ``X`` and ``Y`` and the history (ImplicitALS's maths: items, then
    users, each block solved against the other side's rows and its all-reduced Gram)."""
    model._validate()
    model.device_ = dev = resolve_device(model.device)
    k = int(model.n_factors)
    ou, oi = b.items_of_users, b.users_of_items
    xu = csr_from_ids(b.u_rows, ou.index, b.r_by_user, (b.uhi - b.ulo, ou.n))
    xi = csr_from_ids(b.i_rows, oi.index, b.r_by_item, (b.ihi - b.ilo, oi.n))
    model.seed_ = _shared_seed(model.random_state)
    g = torch_generator(model.seed_)
    std = float(model.init_std) / math.sqrt(k)
    Xl = (torch.randn(b.nu, k, generator=g)[b.ulo: b.uhi] * std).to(dev)
    Yl = (torch.randn(b.ni, k, generator=g)[b.ilo: b.ihi] * std).to(dev)
    lam_u, lam_i = model._ridge(np.diff(xu.indptr), b.ni), model._ridge(np.diff(xi.indptr), b.nu)
    a, a0 = float(model.alpha), float(model.unobserved_weight)
    cg = int(model.cg_steps) if model.solver == "cg" else 0
    history: list[dict[str, Any]] = []
    for sweep in range(int(model.epochs)):
        t0 = time.perf_counter()
        last = sweep == int(model.epochs) - 1
        # the one-process schedule: CG warm-started from the current rows, exact last users
        Xo = oi.rows(Xl)
        Yl = solve_implicit_rows(xi, Xo, a0 * oi.gram(Xl, Xo), lam_i, a, a0, out=Yl,
                                 cg_steps=cg)
        Yo = ou.rows(Yl)
        Xl = solve_implicit_rows(xu, Yo, a0 * ou.gram(Yl, Yo), lam_u, a, a0, out=Xl,
                                 cg_steps=0 if last else cg)
        finite = bool(torch.isfinite(Xl).all() and torch.isfinite(Yl).all())
        if all_reduce_sum([float(not finite)])[0]:
            raise ModelFitError(f"iALS produced non-finite factors in sweep {sweep + 1}; "
                                f"raise reg (now {model.reg:g})")
        history.append({"epoch": sweep + 1, "seconds": time.perf_counter() - t0})
    return Xl, Yl, history


def run(job: TrainJob, w: World) -> Recommender | None:
    """The tier's rank entry point (:data:`~collabkit.distributed.tiers.RankEntry`) for kinds
    ``"als"`` and ``"ials"``: the fitted model on rank 0, None elsewhere."""
    if job.kind not in ("als", "ials"):
        raise ConfigError(f"the 'als' tier trains kinds 'als' and 'ials', not {job.kind!r}")
    start = time.perf_counter()
    blocks = Blocks(job.train)
    if job.kind == "als":
        als = BiasedALS(**job.params)
        X, Y, _, reg_, history = fit_als(blocks, als)
        return _als_model(als, job.train, gather_rows(X.cpu()), gather_rows(Y.cpu()), reg_,
                          history, time.perf_counter() - start)
    ials = ImplicitALS(**job.params)
    X, Y, history = fit_ials(blocks, ials)
    return _ials_model(ials, job.train, gather_rows(X.cpu()), gather_rows(Y.cpu()), history,
                       time.perf_counter() - start)


def _als_model(model: BiasedALS, part: Interactions, X: torch.Tensor | None,
               Y: torch.Tensor | None, reg_: float, history: list[dict[str, Any]],
               seconds: float) -> Recommender | None:
    """Rank 0's BiasedALS from the gathered tables (collective: every rank calls it)."""
    data, k = gather_interactions(part), int(model.n_factors)
    if data is None or X is None or Y is None:
        return None

    def state(ku: np.ndarray, ki: np.ndarray) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        x, y = X[torch.from_numpy(ku)].cpu(), Y[torch.from_numpy(ki)].cpu()
        return ({"als.user_factors": x[:, :k].contiguous(), "als.user_bias": x[:, k].contiguous(),
                 "als.item_factors": y[:, :k].contiguous(), "als.item_bias": y[:, k].contiguous()},
                {"seed": _seed_of(model), "history": history, "fit_seconds": seconds,
                 "valid_rmse": None, "reg_used": reg_})

    return adopt(model, data, state)


def _ials_model(model: ImplicitALS, part: Interactions, X: torch.Tensor | None,
                Y: torch.Tensor | None, history: list[dict[str, Any]], seconds: float
                ) -> Recommender | None:
    """Rank 0's ImplicitALS from the gathered tables (collective: every rank calls it)."""
    data = gather_interactions(part)
    if data is None or X is None or Y is None:
        return None

    def state(ku: np.ndarray, ki: np.ndarray) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return ({"ials.user_factors": X[torch.from_numpy(ku)].cpu().contiguous(),
                 "ials.item_factors": Y[torch.from_numpy(ki)].cpu().contiguous()},
                {"seed": _seed_of(model), "history": history, "fit_seconds": seconds,
                 "item_popularity": model.item_popularity_.tolist()})

    return adopt(model, data, state)


def _seed_of(model: Recommender) -> int | None:
    seed = getattr(model, "seed_", None)
    return int(seed) if seed is not None else None
