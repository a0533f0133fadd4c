"""How a data-parallel plan splits the rows (issue 15): each global batch into disjoint parts
that cover it, sizes differing by at most one; per-rank rows disjoint and covering; the loss
weight of a per-rank step counts every rank's rows. No process group needed."""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from collabkit.train.parallel import DataParallel, per_rank_rows, per_rank_step_rows


def _plan(rank: int, size: int) -> DataParallel:
    return DataParallel(rank, size, lambda m: m, lambda t: None)


@given(n=st.integers(0, 50), size=st.integers(1, 6))
def test_parts_of_a_global_batch_are_disjoint_cover_it_and_differ_by_one(n: int,
                                                                         size: int) -> None:
    batch = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    parts = [_plan(r, size).local(batch) for r in range(size)]
    assert torch.equal(torch.cat(parts), batch)  # in order: disjoint and covering
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@given(n=st.integers(0, 60), size=st.integers(1, 5), local=st.integers(1, 9))
def test_per_rank_rows_cover_and_step_weights_sum_to_all_rows(n: int, size: int,
                                                              local: int) -> None:
    rows = [per_rank_rows(n, r, size) for r in range(size)]
    assert sorted(torch.cat(rows).tolist()) == list(range(n))
    steps = math.ceil(math.ceil(n / size) / local)
    assert sum(per_rank_step_rows(n, size, local, s) for s in range(steps)) == n


def test_a_known_split() -> None:
    # 10 rows, batch of 7 over 3 ranks: 3/2/2, then the short batch of 3: 1/1/1
    perm = torch.arange(10)
    first = [_plan(r, 3).local(perm[:7]).tolist() for r in range(3)]
    assert first == [[0, 1, 2], [3, 4], [5, 6]]
    assert [_plan(r, 3).local(perm[7:]).tolist() for r in range(3)] == [[7], [8], [9]]
    assert per_rank_step_rows(10, 3, 2, 0) == 6 and per_rank_step_rows(10, 3, 2, 1) == 4
