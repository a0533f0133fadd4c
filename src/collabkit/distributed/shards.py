"""Row shards and the collectives that move rows between them (issue 15, part 2).

A table of ``n`` rows is split into ``size`` contiguous ranges, the first ``n % size`` ranks
holding one row more (:class:`RowLayout`). Rows move between ranks only through
``torch.distributed`` collectives: ``all_to_all_single`` for ids and rows (:class:`Route`),
``all_gather`` for a whole table, ``gather`` to rank 0. Every helper also runs without a
process group (one process is rank 0 of 1), so the same code trains 1 or N ranks, and moves
its tensors to the backend's device on the way out (CUDA under NCCL) and back on arrival.

Deterministic randomness that does not depend on the layout comes from SplitMix64 of a
seed and a *global* key (:func:`hash_uniform`): a row's initial weights and the batch a rating
falls in are then the same whether 1 or 4 ranks hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from collabkit.distributed.group import world
from collabkit.errors import DataError

__all__ = ["RowLayout", "Route", "splitmix64", "hash_uniform", "pinned_normal",
           "exchange", "all_gather_rows", "gather_rows", "all_reduce_sum", "check_indices",
           "wire", "all_reduce_", "broadcast_"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 keys (wrapping arithmetic): well-mixed 64-bit hashes."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_uniform(seed: int, stream: int, keys: np.ndarray) -> np.ndarray:
    """Uniform floats in ``(0, 1)`` from ``(seed, stream, key)``, one per key."""
    base = splitmix64(np.array([(seed & (2**63 - 1)) * 1_000_003 + stream], dtype=np.uint64))
    with np.errstate(over="ignore"):
        z = splitmix64(keys.astype(np.uint64) + base[0])
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def pinned_normal(seed: int, stream: int, rows: np.ndarray, width: int,
                  std: float) -> torch.Tensor:
    """``(len(rows), width)`` normal draws fixed per *global* row id (Box-Muller), float32.

    Row ``g`` gets the same values on every layout, so 1 and N ranks start equal.
    """
    keys = (rows.astype(np.uint64)[:, None] * np.uint64(width)
            + np.arange(width, dtype=np.uint64)[None, :]).reshape(-1)
    u1 = hash_uniform(seed, 2 * stream, keys)
    u2 = hash_uniform(seed, 2 * stream + 1, keys)
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return torch.from_numpy((z * std).astype(np.float32).reshape(len(rows), width))


def check_indices(name: str, ids: np.ndarray, n: int) -> None:
    """Refuse ids that are not indices ``0..n-1`` of the shared vocabulary (-1: unknown id)."""
    bad = (ids < 0) | (ids >= n)
    if bad.any():
        raise DataError(f"{int(bad.sum())} {name} are not indices of the shared vocabulary of "
                        f"{n} (first: {int(ids[bad][0])}); index every rank's rows with the same "
                        "vocabularies (collabkit.distributed.data.load_rank_part)")


@dataclass(frozen=True)
class RowLayout:
    """``n`` rows in ``size`` contiguous shards; rank ``r`` owns ``[starts[r], starts[r+1])``."""

    n: int
    size: int

    @property
    def starts(self) -> np.ndarray:
        base, extra = divmod(self.n, self.size)
        r = np.arange(self.size + 1)
        return r * base + np.minimum(r, extra)

    def range(self, rank: int) -> tuple[int, int]:
        s = self.starts
        return int(s[rank]), int(s[rank + 1])

    def counts(self) -> list[int]:
        return np.diff(self.starts).astype(int).tolist()

    def owner(self, rows: np.ndarray) -> np.ndarray:
        """The rank owning each global row."""
        return np.searchsorted(self.starts, rows, side="right") - 1


def wire(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the device the backend moves tensors from: CUDA under NCCL, else the CPU."""
    dev = (torch.device("cuda", torch.cuda.current_device()) if world().backend == "nccl"
           else torch.device("cpu"))
    return t.to(dev)


def all_reduce_(t: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM
                ) -> torch.Tensor:
    """``t`` reduced over ranks (returned on ``t``'s device; ``t`` itself when alone)."""
    if world().size == 1:
        return t
    w = wire(t)
    dist.all_reduce(w, op=op)
    return w.to(t.device)


def broadcast_(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``t`` on every rank (same shape and dtype everywhere)."""
    if world().size == 1:
        return t
    w = wire(t)
    dist.broadcast(w, src=0)
    return w.to(t.device)


def _a2a(t: torch.Tensor, send: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Send consecutive blocks of ``t`` (``send[r]`` rows to rank ``r``); return what arrived."""
    if world().size == 1:
        return t.clone(), list(send)
    sc = wire(torch.tensor(send, dtype=torch.int64))
    rc = torch.empty_like(sc)
    dist.all_to_all_single(rc, sc)
    recv = [int(x) for x in rc.tolist()]
    src = wire(t.contiguous())
    out = src.new_empty((sum(recv), *t.shape[1:]))
    dist.all_to_all_single(out, src, recv, send)
    return out.to(t.device), recv


def exchange(dest: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """Send row ``j`` of every column to rank ``dest[j]``; return the rows this rank got.

    Arrival order is by source rank, then by the sender's original order (stable).
    """
    size = world().size
    order = np.argsort(dest, kind="stable")
    send = np.bincount(dest, minlength=size).astype(int).tolist()
    out = []
    for col in columns:
        t = torch.from_numpy(np.ascontiguousarray(col[order]))
        out.append(_a2a(t, send)[0].numpy())
    return out


class Route:
    """Where a batch's (distinct) global rows live, and the all-to-alls that fetch them.

    ``fetch`` sends ids to their owners and gets their rows back (forward lookups);
    ``push`` sends gradient rows the other way, summed per owned row (backward).
    """

    def __init__(self, rows: np.ndarray, layout: RowLayout) -> None:
        me = world().rank
        self.order = np.argsort(layout.owner(rows), kind="stable")
        self.send = np.bincount(layout.owner(rows), minlength=layout.size).astype(int).tolist()
        ids, self.recv = _a2a(torch.from_numpy(rows[self.order].astype(np.int64)), self.send)
        self.local = ids - layout.range(me)[0]          # the rows others asked of this rank
        #: rows this rank asks of / serves to *other* ranks (what crosses the network)
        self.asked = sum(self.send) - self.send[me]
        self.served = sum(self.recv) - self.recv[me]

    def bytes_sent(self, width: int, itemsize: int = 4) -> int:
        """Bytes this rank sends to others for one fetch and one push of ``width``-wide rows:
        8 per id asked, the rows it serves, the gradient rows it pushes."""
        return 8 * self.asked + itemsize * width * (self.served + self.asked)

    def fetch(self, table: torch.Tensor) -> torch.Tensor:
        """Rows ``rows`` of the sharded ``table`` (this rank's shard), in the caller's order."""
        back, _ = _a2a(table.index_select(0, self.local), self.recv)
        out = torch.empty_like(back)
        out[torch.from_numpy(self.order)] = back
        return out

    def push(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Send ``grad`` (a row per requested row) to the owners: ``(local rows, summed rows)``."""
        got, _ = _a2a(grad[torch.from_numpy(self.order)], self.send)
        rows, inv = torch.unique(self.local, return_inverse=True)
        summed = got.new_zeros((len(rows), got.shape[1])).index_add_(0, inv, got)
        return rows, summed


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sums over ranks of a few float64 numbers (one collective)."""
    t = all_reduce_(torch.tensor(values, dtype=torch.float64))
    return [float(x) for x in t.tolist()]


def all_gather_rows(local: torch.Tensor, layout: RowLayout) -> torch.Tensor:
    """The whole table on every rank from each rank's contiguous shard (padded all-gather)."""
    w = world()
    if w.size == 1:
        return local
    counts = layout.counts()
    pad = wire(local.new_zeros((max(counts), *local.shape[1:])))
    pad[: len(local)] = local
    parts = [torch.empty_like(pad) for _ in range(w.size)]
    dist.all_gather(parts, pad)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)]).to(local.device)


def gather_rows(local: torch.Tensor) -> torch.Tensor | None:
    """Every rank's rows concatenated in rank order on rank 0 (None on the others)."""
    w = world()
    if w.size == 1:
        return local
    n = wire(torch.tensor([len(local)], dtype=torch.int64))
    sizes = [torch.empty_like(n) for _ in range(w.size)]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    pad = wire(local.new_zeros((max(counts), *local.shape[1:])))
    pad[: len(local)] = local
    parts = [torch.empty_like(pad) for _ in range(w.size)] if w.is_main else None
    dist.gather(pad, parts, dst=0)
    if parts is None:
        return None
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)]).to(local.device)
