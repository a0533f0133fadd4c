"""The replicate tier: a full copy of the model on every rank, under DistributedDataParallel
(issue 15).

Each rank holds all training rows and trains through a
:class:`~collabkit.train.parallel.DataParallel` plan: one seeded permutation per epoch,
this rank's part of every global batch, gradients averaged by DDP, so that the same seed
gives the same model at any world size (``shuffle="global"``, the default). Dense gradients
train the exact AdamW path of the one-process loop; ``sparse="sgd"`` or ``"adagrad"`` sends
only the touched rows (on gloo; NCCL has no sparse all-reduce).

BiasedMF (kind ``dot``) trains here with ``optimizer="adamw"``: its default packed Adam
kernel runs in one process only.
"""

from __future__ import annotations

import inspect
import os
import signal
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from collabkit.distributed.group import World, world
from collabkit.distributed.tiers import TrainJob
from collabkit.errors import ConfigError
from collabkit.models.base import Recommender
from collabkit.train.parallel import DataParallel, data_parallel

__all__ = ["plan", "fit_replicated", "run", "ByteCounter", "KILL_ENV"]

# torch 2.13 renamed broadcast_buffers (deprecated) to forward_sync_buffers; torch>=2.2 works
_NO_BUFFER_SYNC: dict[str, Any] = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                   inspect.signature(DistributedDataParallel.__init__).parameters
                   else {"broadcast_buffers": False})

#: test hook: ``"RANK:STEP"`` makes that rank SIGKILL itself before that global step
KILL_ENV = "COLLABKIT_TEST_KILL_RANK_AT_STEP"


class ByteCounter:
    """Counts the bytes DDP all-reduces (its gradient buckets), per step and in all."""

    def __init__(self) -> None:
        self.total = 0
        self.calls = 0

    def add(self, *tensors: torch.Tensor) -> None:
        """Count one collective's payload: ``tensors``' bytes."""
        self.total += sum(t.numel() * t.element_size() for t in tensors)
        self.calls += 1

    def hook(self, state: Any, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        buf = bucket.buffer()
        self.total += buf.numel() * buf.element_size()
        self.calls += 1
        return default_hooks.allreduce_hook(None, bucket)  # type: ignore[arg-type]

    # DDP checks the hook's annotations as objects; this module's are strings (PEP 563)
    hook.__annotations__ = {"state": Any, "bucket": dist.GradBucket,
                            "return": torch.futures.Future[torch.Tensor]}


def _kill_hook(rank: int) -> Callable[[int], None] | None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    who, _, at = spec.partition(":")
    if int(who) != rank:
        return None

    def hook(step: int) -> None:
        if step == int(at):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _gather_rows(t: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Every rank's ``t`` (rows on dimension 0, counts that may differ), in rank order."""
    n = torch.tensor([t.shape[0]], dtype=torch.int64)
    counts = [torch.zeros_like(n) for _ in range(size)]
    dist.all_gather(counts, n)
    longest = int(max(int(c) for c in counts))
    padded = t.new_zeros((longest, *t.shape[1:]))
    padded[: t.shape[0]] = t
    out = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(out, padded)
    return [o[: int(c)] for o, c in zip(out, counts, strict=True)]


def _average_sparse(size: int, counter: ByteCounter | None) -> Callable[[nn.Module], None]:
    """Average every gradient over the ranks: sparse ones by all-gathering their rows
    (indices and values, the touched rows only), dense ones by all-reduce."""

    def average(module: nn.Module) -> None:
        for p in module.parameters():
            if not p.requires_grad:
                continue
            g = p.grad
            if g is None or not g.is_sparse:
                dense = torch.zeros_like(p) if g is None else g
                dist.all_reduce(dense)
                p.grad = dense.div_(size)
                if counter is not None:
                    counter.add(dense)
                continue
            g = g.coalesce()
            idx = _gather_rows(g.indices().t().contiguous(), size)
            vals = _gather_rows(g.values(), size)
            if counter is not None:
                counter.add(g.indices(), g.values())
            p.grad = torch.sparse_coo_tensor(torch.cat(idx).t(), torch.cat(vals) / size,
                                             g.shape, check_invariants=False).coalesce()

    return average


def plan(w: World | None = None, *, sparse: str | None = None, shuffle: str = "global",
         counter: ByteCounter | None = None) -> DataParallel:
    """This rank's :class:`~collabkit.train.parallel.DataParallel` plan under DDP."""
    w = w or world()
    if shuffle not in ("global", "per-rank"):
        raise ConfigError(f"shuffle must be 'global' or 'per-rank', got {shuffle!r}")

    def wrap(module: nn.Module) -> nn.Module:
        if sparse is not None:  # DDP's sparse all-reduce lost gradient scale here (gloo)
            return module
        dev = next(module.parameters()).device
        ddp = DistributedDataParallel(
            module, device_ids=[dev.index] if dev.type == "cuda" else None,
            **_NO_BUFFER_SYNC)  # buffers (the global bias) never change in training
        if counter is not None:
            ddp.register_comm_hook(None, counter.hook)
        return ddp

    def reduce_sum(t: torch.Tensor) -> None:
        dist.all_reduce(t)

    return DataParallel(w.rank, w.size, wrap, reduce_sum, shuffle=shuffle, sparse=sparse,
                        on_step=_kill_hook(w.rank),
                        after_backward=None if sparse is None else _average_sparse(w.size,
                                                                                   counter))


def _prepare(est: Recommender) -> Recommender:
    params = est.get_params()
    if params.get("optimizer") == "adam":
        raise ConfigError(
            "the replicate tier trains BiasedMF with the torch AdamW path: pass "
            "optimizer='adamw' (optimizer='adam', the packed kernel, trains in one process "
            "only)")
    return est


def fit_replicated(est: Recommender, data: Any, *, sparse: str | None = None,
                   shuffle: str = "global", counter: ByteCounter | None = None) -> Recommender:
    """Fit ``est`` on ``data`` as this rank of the running job (a plain fit in 1 process)."""
    _prepare(est)
    w = world()
    if not w.distributed:
        if sparse is None and shuffle == "global":  # the one-process loop itself
            return est.fit(data)
        one = DataParallel(0, 1, lambda m: m, lambda t: None, shuffle=shuffle, sparse=sparse)
        with data_parallel(one):
            return est.fit(data)
    with data_parallel(plan(w, sparse=sparse, shuffle=shuffle, counter=counter)):
        return est.fit(data)


def run(job: TrainJob, w: World) -> Recommender | None:
    """The tier's rank entry point (:data:`~collabkit.distributed.tiers.RankEntry`)."""
    from collabkit.models import registry

    est = registry.get(job.kind)(**job.params)
    return fit_replicated(est, job.train, sparse=job.options.get("sparse"),
                          shuffle=job.options.get("shuffle", "global"))
