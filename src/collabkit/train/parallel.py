"""Data parallelism as the one-cycle loop sees it: which rows of a global batch this rank
takes, how its loss is weighted, and the wrapped module it steps (issue 15).

The distributed layer (:mod:`collabkit.distributed.replicate`) builds a :class:`DataParallel`
and activates it with :func:`data_parallel` around an ordinary ``fit``; while it is active,
:func:`~collabkit.train.loop.fit_one_cycle` trains through it. Nothing here starts a process
group: a plan only carries the callables the distributed layer gave it, so this layer does
not import that one.

Exactness: every rank draws the same permutation of all ``n`` rows each epoch, slices the
same global batch of ``batch_size`` rows, and keeps its part (:meth:`DataParallel.local`,
contiguous parts whose sizes differ by at most one). Its loss is its rows' summed squared
error times ``size / len(global batch)``; DDP averages the gradients over the ``size`` ranks,
so the step is the mean over the global batch, as in one process. A rank with no rows in a
short last batch still steps (its loss is 0), so every rank takes the same number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["DataParallel", "data_parallel", "active", "per_rank_rows"]


@dataclass(frozen=True)
class DataParallel:
    """One rank's view of a data-parallel fit.

    Attributes
    ----------
    rank, size : int
        This rank and the number of ranks.
    wrap : callable
        Turns the module into the one to step (DistributedDataParallel); called once per fit.
    reduce_sum : callable
        Sums a tensor over the ranks in place (the epoch's loss statistics).
    shuffle : {"global", "per-rank"}
        ``"global"``: one permutation of all rows per epoch, each rank takes its part of every
        global batch (the same model at any world size). ``"per-rank"``: each rank shuffles
        its own fixed rows (``rank::size``) with its own stream and steps
        ``batch_size // size`` of them (ordinary data parallelism).
    sparse : {None, "sgd", "adagrad"}
        Sparse embedding gradients with this optimizer (no weight decay), or dense ones.
    on_step : callable or None
        Called with the global step number before each step (the fault-injection hook).
    after_backward : callable or None
        Called with the (unwrapped) module after each backward pass, before the optimizer
        step: averages the gradients when ``wrap`` does not (the sparse path).
    """

    rank: int
    size: int
    wrap: Callable[[nn.Module], nn.Module]
    reduce_sum: Callable[[torch.Tensor], None]
    shuffle: str = "global"
    sparse: str | None = None
    on_step: Callable[[int], None] | None = None
    after_backward: Callable[[nn.Module], None] | None = None

    def local(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of global batch ``idx``."""
        return torch.tensor_split(idx, self.size)[self.rank]


_active: ContextVar[DataParallel | None] = ContextVar("collabkit_data_parallel", default=None)


def active() -> DataParallel | None:
    """The plan the current fit trains through, or None (one process)."""
    return _active.get()


@contextmanager
def data_parallel(plan: DataParallel) -> Iterator[DataParallel]:
    """``with data_parallel(plan): est.fit(data)``: fits inside train through ``plan``."""
    token = _active.set(plan)
    try:
        yield plan
    finally:
        _active.reset(token)


def per_rank_rows(n: int, rank: int, size: int) -> torch.Tensor:
    """The rows rank ``rank`` of ``size`` owns under ``shuffle="per-rank"``: ``rank::size``."""
    return torch.arange(rank, max(n, rank), size)  # empty when there are fewer rows than ranks


def per_rank_step_rows(n: int, size: int, local_batch: int, step: int) -> int:
    """How many rows all ranks together hold in per-rank step ``step`` (its loss weight)."""
    total = 0
    for r in range(size):
        n_r = len(range(r, n, size))
        total += max(0, min(local_batch, n_r - step * local_batch))
    return total
