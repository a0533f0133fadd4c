"""The process group's life (issue 15): spawned gloo ranks see their world, agree through
a collective, and a single process is 0 of 1."""

from __future__ import annotations

from collabkit.distributed.group import spawn, world
from collabkit.testing.ranks import sum_of_ranks


def test_single_process_is_rank_0_of_1() -> None:
    w = world()
    assert (w.rank, w.size, w.distributed, w.is_main) == (0, 1, False, True)


def test_spawned_ranks_know_their_place_and_reduce() -> None:
    out = spawn(sum_of_ranks, 2, timeout_s=30)
    assert out == [{"rank": 0, "size": 2, "sum": 1}, {"rank": 1, "size": 2, "sum": 1}]
