"""The process group's life: start, who am I, barrier, and a teardown that does not abort.

One place starts and ends ``torch.distributed`` for every tier. The backend follows the
device chosen at run time: gloo on CPU, NCCL on CUDA. A rank started by ``torchrun`` finds
its rank, world size and rendezvous in the environment; tests spawn ranks with
:func:`spawn`, which rendezvous through a ``file://`` URL in a private temporary folder.

Teardown order matters: with four gloo ranks on this 2-core machine ``torchrun`` aborted
with SIGABRT in 4 of 10 runs after the work had finished; dropping the model, collecting
garbage, a barrier and then ``destroy_process_group`` fixed it in 12 of 12
(``../shared/research/distributed.md``). :func:`shutdown` does exactly that.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["World", "world", "start", "shutdown", "running", "spawn", "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` ranks (1 process: 0 of 1)."""

    rank: int
    size: int
    local_rank: int
    backend: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The current world: the process group's when one is running, else 0 of 1."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(),
                     int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_backend())
    return World(0, 1, 0, None)


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def start(device: torch.device | None = None, *, init_method: str | None = None,
          rank: int | None = None, size: int | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the process group (idempotent). Without arguments, read torchrun's environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``); tests pass ``init_method``,
    ``rank`` and ``size``. On CUDA each rank takes the GPU of its ``LOCAL_RANK``."""
    if dist.is_initialized():
        return world()
    device = device or torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank or 0)))
    kwargs: dict[str, Any] = {"backend": _backend(device),
                              "timeout": timedelta(seconds=timeout_s)}
    if init_method is not None:
        kwargs.update(init_method=init_method, rank=rank, world_size=size)
    dist.init_process_group(**kwargs)
    return world()


def shutdown(*drop: Any) -> None:
    """Leave the process group in the order that does not abort at exit: drop the given
    objects' references here, collect garbage, barrier, destroy. Safe to call twice."""
    del drop
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


@contextmanager
def running(device: torch.device | None = None, **kwargs: Any) -> Iterator[World]:
    """``with running() as w:`` — start, yield the world, shut down (also on error)."""
    w = start(device, **kwargs)
    try:
        yield w
    finally:
        shutdown()


def _spawned(rank: int, fn: Callable[..., Any], size: int, init_method: str, out: str,
             timeout_s: float, args: tuple[Any, ...]) -> None:
    torch.set_num_threads(1)
    start(torch.device("cpu"), init_method=init_method, rank=rank, size=size,
          timeout_s=timeout_s)
    try:
        result = fn(rank, size, *args)
    finally:
        shutdown()
    # Results go through files as JSON: tensors returned through mp queues fail (research note).
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))


def spawn(fn: Callable[..., Any], size: int, *args: Any,
          timeout_s: float = DEFAULT_TIMEOUT_S, start_method: str = "spawn") -> list[Any]:
    """Run ``fn(rank, size, *args)`` on ``size`` CPU ranks under gloo and return each rank's
    JSON-serialisable result, in rank order. ``fn`` must be importable (module level). A rank
    that raises or dies fails the whole call with torch's ``ProcessRaisedException`` /
    ``ProcessExitedException``; the group's ``timeout_s`` bounds how long the others wait.
    ``start_method="fork"`` starts ranks without importing torch again (seconds per rank on
    a loaded 2-core machine); the parent must not have run a multi-threaded torch op that a
    child then needs (the ranks run with one thread)."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="collabkit-dist-") as tmp:
        init_method = Path(tmp, "rendezvous").as_uri()
        mp.start_processes(_spawned, args=(fn, size, init_method, tmp, timeout_s, args),
                           nprocs=size, join=True, start_method=start_method)
        return [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(size)]
