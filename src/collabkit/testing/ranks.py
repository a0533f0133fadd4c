"""Rank programs for the distributed tests (issue 15).

Spawned ranks import the function they run by its module path, and pytest's
``--import-mode=importlib`` leaves test modules unimportable in a child process, so the
small programs the tests spawn live here, in the installed package.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from collabkit.distributed.group import world


def sum_of_ranks(rank: int, size: int) -> dict[str, int]:
    """Each rank reports its place and the all-reduced sum of all ranks."""
    w = world()
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    return {"rank": w.rank, "size": w.size, "sum": int(t.item())}
