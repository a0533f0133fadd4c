"""Data per rank (issue 15, part 2): each rank opens only the files of its parts of a
partitioned Parquet dataset, the parts' union is the whole table, and every rank gets the
same vocabularies from rank 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collabkit.distributed.data import read_rank_part, write_partitioned
from collabkit.errors import ConfigError, DataError

from .conftest import parquet_frame


def _rows(df: Any) -> list[tuple[str, int, float]]:
    return sorted((str(u), int(i), float(r)) for u, i, r in df)


@pytest.mark.parametrize("size", [2, 4])
def test_each_rank_reads_only_its_files_and_the_union_is_whole(
        suite: Callable[[int], dict[str, Any]], size: int) -> None:
    ranks = [r["parquet"] for r in suite(size)["ranks"]]
    for rank, got in enumerate(ranks):
        assert got["parts"] == [p for p in range(6) if p % size == rank]
        opened = sorted(int(Path(f).parent.name.removeprefix("part=")) for f in got["files"])
        assert opened == got["parts"]  # one file per part, and only its own parts' files
    assert sum(len(g["files"]) for g in ranks) == 6
    whole = parquet_frame()
    assert _rows(r for g in ranks for r in g["rows"]) == _rows(whole.values.tolist())
    # every user's ratings on one rank
    owners = {u: k for k, g in enumerate(ranks) for u, _, _ in g["rows"]}
    assert all(owners[u] == k for k, g in enumerate(ranks) for u, _, _ in g["rows"])
    assert {(g["users"], g["items"]) for g in ranks} == {(17, 7)}
    assert {tuple(g["rating_range"]) for g in ranks} == {(1.0, 5.0)}


@pytest.mark.parametrize("size", [2, 4])
def test_parts_feed_the_rowwise_tier_as_one_table_would(
        suite: Callable[[int], dict[str, Any]], size: int) -> None:
    one = suite(1)["ranks"][0]["parquet"]["rowwise_rmse"]
    assert 0 < one < 2
    assert all(abs(r["parquet"]["rowwise_rmse"] - one) < 1e-5 for r in suite(size)["ranks"])


def test_range_partitions_keep_neighbouring_users_together(tmp_path: Path) -> None:
    df = parquet_frame().assign(user=lambda d: d.user.str[1:].astype(int))
    path = write_partitioned(df, tmp_path / "ds", 3, by="range")
    users = [sorted(set(read_rank_part(path, r, 3).frame.user)) for r in range(3)]
    assert users == [list(range(0, 5)), list(range(5, 11)), list(range(11, 17))]


def test_bad_inputs_are_refused_with_the_argument_named(tmp_path: Path) -> None:
    write_partitioned(parquet_frame(), tmp_path / "ds", 2)
    with pytest.raises(ConfigError, match="already exists"):
        write_partitioned(parquet_frame(), tmp_path / "ds", 2)
    with pytest.raises(ConfigError, match="n_parts"):
        write_partitioned(parquet_frame(), tmp_path / "x", 0)
    with pytest.raises(DataError, match="user_col"):
        write_partitioned(parquet_frame(), tmp_path / "y", 2, user_col="uid")
    with pytest.raises(DataError, match="write_partitioned"):
        read_rank_part(tmp_path / "missing", 0, 1)
