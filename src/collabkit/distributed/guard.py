"""The fingerprint guard: every rank must hold the data the job says it holds (issue 15).

Before a tier trains, each rank hashes its data and vocabularies and the ranks all-gather
the hashes. A rank whose fingerprint differs (another file, another ``--seed`` for the
split, a stale copy on one machine) is refused before any training step, naming the ranks
and what differs, so a job never trains one model on mixed data.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch.distributed as dist

from collabkit.data.interactions import Interactions
from collabkit.distributed.group import World
from collabkit.errors import DataError

__all__ = ["fingerprint", "check_same_data"]


def _hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else "\x1f".join(map(str, a)).encode())
    return h.hexdigest()[:16]


def fingerprint(data: Interactions, *, rows: bool = True) -> dict[str, Any]:
    """What a rank holds: row and id counts, and hashes of the vocabularies and (``rows``)
    of the rows. A tier whose ranks hold different rows by design (part 2's partitions)
    passes ``rows=False`` and compares the vocabularies only."""
    out: dict[str, Any] = {
        "users": len(data.user_vocab), "items": len(data.item_vocab),
        "vocabularies": _hash(data.user_vocab.all_ids, data.item_vocab.all_ids),
        "rating_range": [float(v) for v in data.rating_range]}
    if rows:
        out.update(rows=len(data), data=_hash(data.users, data.items, data.ratings))
    return out


def check_same_data(data: Interactions, world: World, *, rows: bool = True) -> None:
    """All-gather every rank's :func:`fingerprint` and refuse any that differs from rank 0's.

    Raises
    ------
    DataError
        Naming the ranks that differ and each differing field (rank 0's value and theirs).
    """
    mine = fingerprint(data, rows=rows)
    if not world.distributed:
        return
    every: list[Any] = [None] * world.size
    dist.all_gather_object(every, mine)
    bad = [r for r, fp in enumerate(every) if fp != every[0]]
    if not bad:
        return
    diffs = "; ".join(
        f"rank {r}: " + ", ".join(f"{k} {every[r].get(k)} (rank 0: {every[0].get(k)})"
                                  for k in every[0] if every[r].get(k) != every[0].get(k))
        for r in bad)
    raise DataError(f"the ranks do not hold the same data, training did not start: {diffs}. "
                    "Every rank must read the same ratings file (the same copy on every "
                    "machine) and split it with the same --seed.")
