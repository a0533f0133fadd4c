"""Implicit interactions: tables without ratings, adjacency lists, explicit -> implicit, gowalla."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabkit.data.implicit import (
    gowalla_path,
    load_gowalla,
    read_adjacency,
    read_interactions,
    to_implicit,
)
from collabkit.data.interactions import Interactions
from collabkit.errors import DataError, DatasetNotAvailableError, DataWarning


def _pairs(d: Interactions) -> set[tuple[object, object, float]]:
    df = d.to_dataframe()
    return set(zip(df["user"].tolist(), df["item"].tolist(), df["rating"].tolist(), strict=True))


def test_csv_without_weights_gives_weight_one(tmp_path: Path) -> None:
    p = tmp_path / "clicks.csv"
    p.write_text("user,item\nu1,a\nu1,b\nu2,a\n")
    d = read_interactions(p)
    assert d.implicit and len(d) == 3 and d.name == "clicks.csv"
    assert _pairs(d) == {("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0)}
    assert "implicit" in repr(d)


def test_tsv_without_header_with_counts_and_timestamps(tmp_path: Path) -> None:
    p = tmp_path / "plays.tsv"
    p.write_text("1\t10\t3\t100\n2\t10\t1\t200\n2\t11\t5\t300\n")
    d = read_interactions(p, weight_col=2, timestamp_col=3)
    assert _pairs(d) == {(1, 10, 3.0), (2, 10, 1.0), (2, 11, 5.0)}
    assert sorted(d.timestamps.tolist()) == [100, 200, 300]
    assert d.rating_range == (1.0, 5.0)


def test_parquet_and_dataframe_agree(tmp_path: Path) -> None:
    df = pd.DataFrame({"who": [1, 1, 2], "what": ["x", "y", "y"], "n": [2, 1, 4]})
    df.to_parquet(tmp_path / "t.parquet")
    a = read_interactions(tmp_path / "t.parquet", user_col="who", item_col="what",
                          weight_col="n")
    b = read_interactions(df, user_col="who", item_col="what", weight_col="n")
    assert _pairs(a) == _pairs(b) == {(1, "x", 2.0), (1, "y", 1.0), (2, "y", 4.0)}


def test_repeated_pairs_are_summed_with_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("user,item\n1,5\n1,5\n1,5\n2,5\n")
    with pytest.warns(DataWarning, match="2 repeated .* user 1, item 5"):
        d = read_interactions(p)
    assert _pairs(d) == {(1, 5, 3.0), (2, 5, 1.0)}


def test_bad_weight_names_file_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    p.write_text("user,item,count\n1,5,2\n1,6,-1\n")
    with pytest.raises(DataError, match=r"w.csv line 3: weight -1 in column 'count'"):
        read_interactions(p, weight_col="count")


def test_missing_id_and_missing_column_are_named(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("user,item\n1,5\n,6\n")
    with pytest.raises(DataError, match=r"m.csv line 3: the user id .* is missing"):
        read_interactions(p)
    with pytest.raises(DataError, match=r"no column 'plays' for weight_col"):
        read_interactions(p, weight_col="plays")
    with pytest.raises(DataError, match="no such file"):
        read_interactions(tmp_path / "absent.csv")


def test_adjacency_lists_share_one_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("0 1 2 3\n1 2\n2 4 5\n")
    (tmp_path / "test.txt").write_text("0 4\n1 6\n")
    train, test = read_adjacency(tmp_path / "train.txt", tmp_path / "test.txt")
    assert train.implicit and test.implicit
    assert train.user_vocab == test.user_vocab and train.item_vocab == test.item_vocab
    assert len(train) == 6 and len(test) == 2 and train.n_items == 6  # item 6 only in test
    assert _pairs(test) == {(0, 4, 1.0), (1, 6, 1.0)}


def test_adjacency_bad_token_names_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("0 1 2\n1 x 3\n")
    with pytest.raises(DataError, match=r"a.txt line 2: 'x' is not an integer id"):
        read_adjacency(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_text("0 1 1\n")
    with pytest.raises(DataError, match="the same item twice"):
        read_adjacency(tmp_path / "b.txt")


def test_to_implicit_all_and_threshold() -> None:
    df = pd.DataFrame({"user": [1, 1, 2, 2], "item": [7, 8, 7, 9],
                       "rating": [5.0, 2.0, 4.0, 1.0]})
    d = Interactions.from_dataframe(df, rating_range=(1, 5))
    every = to_implicit(d)
    assert every.implicit and len(every) == 4 and set(every.ratings.tolist()) == {1.0}
    liked = to_implicit(d, threshold=4)
    assert {(u, i) for u, i, _ in _pairs(liked)} == {(1, 7), (2, 7)}
    assert liked.n_items == 3  # vocabularies kept
    with pytest.raises(DataError, match="lower the threshold"):
        to_implicit(d, threshold=6)


def test_gowalla_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLLABKIT_DATA", raising=False)
    with pytest.raises(DatasetNotAvailableError, match="gowalla not found"):
        gowalla_path(tmp_path)


def test_gowalla_canonical_split(data_dir: Path) -> None:
    if not (data_dir / "gowalla" / "train.txt").is_file():
        pytest.skip(f"gowalla not found under {data_dir}; set COLLABKIT_DATA")
    train, test = load_gowalla(os.fspath(data_dir))
    # the counts of PROVENANCE.md
    assert (train.n_users, train.n_items, len(train), len(test)) == (29858, 40981, 810128,
                                                                     217242)
    assert np.unique(test.users).size == 29858
    key = train.n_items
    assert not np.intersect1d(train.users * key + train.items, test.users * key + test.items).size


def test_splits_keep_the_implicit_flag(tmp_path: Path) -> None:
    from collabkit import api

    rows = "".join(f"{u},{i},{100 * u + i}\n" for u in range(4) for i in range(5))
    (tmp_path / "t.csv").write_text("user,item,ts\n" + rows)
    d = read_interactions(tmp_path / "t.csv", timestamp_col="ts")
    for how in ("user", "last", "temporal"):
        train, test = api.split(d, how, test_frac=0.2, k=1)
        assert train.implicit and test.implicit and len(train) + len(test) == 20
    train, test = api.split(d, "last", k=1)
    assert sorted(test.to_dataframe()["item"].tolist()) == [4, 4, 4, 4]  # each user's latest
