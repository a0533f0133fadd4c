"""Explicit ALS and iALS across ranks: each rank solves a block of rows (issue 15, part 2).

Spark's blocked ALS on ``torch.distributed`` collectives. Users and items are split into
contiguous blocks of rows, one per rank (:class:`~collabkit.distributed.shards.RowLayout`).
The ratings are held twice: once moved to the rank owning their user (the "out" block of the
user half) and once to the rank owning their item (Spark's in/out blocks). A half-sweep
solves every row of this rank's block against the whole other side, then an all-gather
puts the solved side on every rank for the next half; roles swap. The per-row solvers are
the one-process models' own (:func:`collabkit.models.als.solve_rows`,
:func:`collabkit.models.implicit.ials.solve_implicit_rows`), and the initial tables come
from the same seeded generator, so 1, 2 or 4 ranks produce the factors a one-process
``fit`` does (when the shared vocabularies hold only ids with training ratings, as ``fit``'s
do). Each rank holds one whole side at a time: the tier suits a side (usually the items)
that fits one rank; its row-wise counterpart for tables that do not is
:mod:`collabkit.distributed.rowwise`.
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
from collabkit.distributed.shards import RowLayout, all_gather_rows, all_reduce_sum, exchange
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


class Blocks:
    """This rank's two copies of the ratings: by user block and by item block."""

    def __init__(self, part: Interactions) -> None:
        w = world()
        self.nu, self.ni = len(part.user_vocab), len(part.item_vocab)
        self.users, self.items = RowLayout(self.nu, w.size), RowLayout(self.ni, w.size)
        self.ulo, self.uhi = self.users.range(w.rank)
        self.ilo, self.ihi = self.items.range(w.rank)
        u, i, r = part.users, part.items, part.ratings.astype(np.float32)
        self.by_user = exchange(self.users.owner(u), u, i, r)   # (user, item, rating)
        self.by_item = exchange(self.items.owner(i), i, u, r)   # (item, user, rating)


def _shared_seed(random_state: int | None) -> int:
    """The model's seed, the same on every rank (rank 0's draw when ``random_state`` is None)."""
    seed = torch.tensor([resolve_seed(random_state)], dtype=torch.int64)
    if world().size > 1:
        torch.distributed.broadcast(seed, src=0)
    return int(seed.item())


def fit_als(b: Blocks, model: BiasedALS) -> tuple[torch.Tensor, torch.Tensor, float, float,
                                                  list[dict[str, Any]]]:
    """Whole ``(X, Y)`` tables ``(p_u, b_u)`` and ``(q_i, b_i)`` on every rank, the global
    mean, the ridge used and the sweeps' history (BiasedALS's maths, blocks over ranks)."""
    model._validate()
    dev, k = resolve_device(model.device), int(model.n_factors)
    n, total = all_reduce_sum([float(len(b.by_user[2])), float(b.by_user[2].sum(dtype=np.float64))])
    if n == 0:
        raise ModelFitError("no ratings on any rank: there is nothing to train on")
    mu = total / n
    (ss,) = all_reduce_sum([float(((b.by_user[2].astype(np.float64) - mu) ** 2).sum())])
    reg_ = float(model.reg) * (math.sqrt(ss / n) or 1.0)
    users = _Side(b.by_user[0] - b.ulo, b.by_user[1], b.by_user[2], b.uhi - b.ulo, b.ni, dev)
    items = _Side(b.by_item[0] - b.ilo, b.by_item[1], b.by_item[2], b.ihi - b.ilo, b.nu, dev)
    model.seed_ = _shared_seed(model.random_state)
    g = torch_generator(model.seed_)
    X = torch.zeros(b.nu, k + 1, device=dev)
    Y = torch.zeros(b.ni, k + 1, device=dev)
    Y[:, :k] = torch.randn(b.ni, k, generator=g).to(dev) * float(model.init_std)
    lam_u = reg_ * users.counts.float() ** float(model.reg_exponent)
    lam_i = reg_ * items.counts.float() ** float(model.reg_exponent)
    ones_u, ones_i = torch.ones(b.nu, 1, device=dev), torch.ones(b.ni, 1, device=dev)
    history = []
    for sweep in range(int(model.epochs)):
        t0 = time.perf_counter()
        Xl = X[b.ulo: b.uhi].clone()
        solve_rows(users, torch.cat([Y[:, :k], ones_i], 1), mu + Y[:, k], lam_u, Xl)
        X = all_gather_rows(Xl, b.users)
        Yl = Y[b.ilo: b.ihi].clone()
        solve_rows(items, torch.cat([X[:, :k], ones_u], 1), mu + X[:, k], lam_i, Yl)
        Y = all_gather_rows(Yl, b.items)
        (sse,) = all_reduce_sum([BiasedALS._sse(users, X[b.ulo: b.uhi], Y, mu)])
        if not math.isfinite(sse):
            raise ModelFitError(f"ALS produced non-finite factors in sweep {sweep + 1}; raise "
                                f"reg (now {model.reg:g})")
        history.append({"epoch": sweep + 1, "train_loss": sse / n, "valid_rmse": None,
                        "seconds": time.perf_counter() - t0})
    return X, Y, mu, reg_, history


def fit_ials(b: Blocks, model: ImplicitALS) -> tuple[torch.Tensor, torch.Tensor,
                                                     list[dict[str, Any]]]:
    """Whole ``(X, Y)`` on every rank and the history (ImplicitALS's maths: items, then users,
    each rank solving its block against the gathered other side and its Gram matrix)."""
    model._validate()
    model.device_ = dev = resolve_device(model.device)
    k = int(model.n_factors)
    xu = csr_from_ids(b.by_user[0] - b.ulo, b.by_user[1], b.by_user[2], (b.uhi - b.ulo, b.ni))
    xi = csr_from_ids(b.by_item[0] - b.ilo, b.by_item[1], b.by_item[2], (b.ihi - b.ilo, b.nu))
    model.seed_ = _shared_seed(model.random_state)
    g = torch_generator(model.seed_)
    std = float(model.init_std) / math.sqrt(k)
    X = (torch.randn(b.nu, k, generator=g) * std).to(dev)
    Y = (torch.randn(b.ni, k, generator=g) * std).to(dev)
    lam_u, lam_i = model._ridge(np.diff(xu.indptr), b.ni), model._ridge(np.diff(xi.indptr), b.nu)
    a, a0 = float(model.alpha), float(model.unobserved_weight)
    history: list[dict[str, Any]] = []
    for sweep in range(int(model.epochs)):
        t0 = time.perf_counter()
        Y = all_gather_rows(solve_implicit_rows(xi, X, a0 * (X.T @ X), lam_i, a, a0), b.items)
        X = all_gather_rows(solve_implicit_rows(xu, Y, a0 * (Y.T @ Y), lam_u, a, a0), b.users)
        if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
            raise ModelFitError(f"iALS produced non-finite factors in sweep {sweep + 1}; "
                                f"raise reg (now {model.reg:g})")
        history.append({"epoch": sweep + 1, "seconds": time.perf_counter() - t0})
    return X, Y, history


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
        return _als_model(als, job.train, X, Y, reg_, history, time.perf_counter() - start)
    ials = ImplicitALS(**job.params)
    X, Y, history = fit_ials(blocks, ials)
    return _ials_model(ials, job.train, X, Y, history, time.perf_counter() - start)


def _als_model(model: BiasedALS, part: Interactions, X: torch.Tensor, Y: torch.Tensor,
               reg_: float, history: list[dict[str, Any]], seconds: float) -> Recommender | None:
    """Rank 0's BiasedALS from the gathered tables (collective: every rank calls it)."""
    data, k = gather_interactions(part), int(model.n_factors)
    if data is None:
        return None

    def state(ku: np.ndarray, ki: np.ndarray) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        x, y = X[torch.from_numpy(ku)].cpu(), Y[torch.from_numpy(ki)].cpu()
        return ({"als.user_factors": x[:, :k].contiguous(), "als.user_bias": x[:, k].contiguous(),
                 "als.item_factors": y[:, :k].contiguous(), "als.item_bias": y[:, k].contiguous()},
                {"seed": _seed_of(model), "history": history, "fit_seconds": seconds,
                 "valid_rmse": None, "reg_used": reg_})

    return adopt(model, data, state)


def _ials_model(model: ImplicitALS, part: Interactions, X: torch.Tensor, Y: torch.Tensor,
                history: list[dict[str, Any]], seconds: float) -> Recommender | None:
    """Rank 0's ImplicitALS from the gathered tables (collective: every rank calls it)."""
    data = gather_interactions(part)
    if data is None:
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
