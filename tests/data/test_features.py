"""Side-feature encoders: hand-computed encodings, JSON round trip, group resolution."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from collabkit.data.features import FeatureEncoder, age_bucket, resolve_groups, side_matrix
from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, FieldError

YEAR = 365.2425 * 86400.0


def _data(*, with_users: bool = True, with_ts: bool = True) -> Interactions:
    """Three rated items (10, 20, 30), one item (40) only in the metadata, three users."""
    df = pd.DataFrame({
        "user": [1, 1, 2, 3],
        "item": [10, 20, 20, 30],
        "rating": [4.0, 3.0, 5.0, 2.0],
        # 1999.0, 2001.0, 2001.0, 2003.0 in fractional years since 1970
        "timestamp": ((np.array([1999.0, 2001.0, 2001.0, 2003.0]) - 1970) * YEAR).astype(int),
    })
    if not with_ts:
        df = df.drop(columns="timestamp")
    item_meta = pd.DataFrame(
        {"title": ["a", "b", "c", "d"],
         "genres": ["Drama|Comedy", "Comedy", None, "Horror"],
         "year": pd.array([1990, 2000, None, 1950], dtype="Int64")},
        index=pd.Index([10, 20, 30, 40], name="item"))
    user_meta = pd.DataFrame(
        {"age": [17, 30, None, 60], "gender": ["F", "M", "M", "F"],
         "occupation": ["student", "writer", None, "artist"]},
        index=pd.Index([1, 2, 3, 4], name="user")) if with_users else None
    return Interactions.from_dataframe(df, item_meta=item_meta, user_meta=user_meta)


def test_age_bucket_labels() -> None:
    assert age_bucket([7, 18, 24, 25, 49, 50, 56, 90, None]).tolist() == [
        "<18", "18-24", "18-24", "25-34", "45-49", "50-55", "56+", "56+", None]


def test_item_numbers_known_answer() -> None:
    enc = FeatureEncoder.fit(_data())
    # genres come only from rated items: Horror (item 40, unrated) is not a column
    assert enc.genres == ["Comedy", "Drama"]
    assert enc.year_mean == pytest.approx(1995.0)
    assert enc.year_std == pytest.approx(5.0)
    x = enc.item_numbers(_data().item_meta, [10, 20, 30, 40, 99])
    np.testing.assert_allclose(x, [
        [1, 1, -1.0, 0],   # Drama|Comedy, (1990 - 1995) / 5
        [1, 0, 1.0, 0],    # Comedy, 2000
        [0, 0, 0.0, 1],    # no genres, missing year
        [0, 0, -9.0, 0],   # Horror unseen in training → no column; 1950
        [0, 0, 0.0, 1],    # id not in the metadata at all
    ])
    assert enc.n_item_numbers == 4


def test_user_categories_zero_is_missing() -> None:
    data = _data()
    enc = FeatureEncoder.fit(data)
    # vocabularies from rated users 1-3 only; user 4 (artist, 56+) is new
    assert enc.user_vocabs == {"age_bucket": ["25-34", "<18"], "gender": ["F", "M"],
                               "occupation": ["student", "writer"]}
    assert enc.user_cardinalities == [3, 3, 3]
    c = enc.user_categories(data.user_meta, [1, 2, 3, 4, 99])
    np.testing.assert_array_equal(c, [[2, 1, 1], [1, 2, 2], [0, 2, 0], [0, 1, 0], [0, 0, 0]])


def test_time_numbers_known_answer() -> None:
    data = _data()
    enc = FeatureEncoder.fit(data)
    assert enc.time_mean == pytest.approx(2001.0)
    # years since release (year + 0.5) of the four rows: 8.5, 0.5, 0.5, NaN (no year)
    assert enc.age_mean == pytest.approx(19 / 6)
    t = enc.time_numbers(np.array([2001.0 - 1970, 2003.0 - 1970]) * YEAR,
                         np.array([2000.0, np.nan]))
    assert t[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert t[1, 0] == pytest.approx(2.0 / enc.time_std)
    assert t[0, 1] == pytest.approx((0.5 - enc.age_mean) / enc.age_std, rel=1e-5)
    assert t[1, 1] == 0.0  # missing release year → the mean
    at_mean = enc.time_numbers(None, np.array([2000.0]))
    assert at_mean[0, 0] == 0.0


def test_json_round_trip_encodes_identically() -> None:
    data = _data()
    enc = FeatureEncoder.fit(data)
    back = FeatureEncoder.from_json(json.loads(json.dumps(enc.to_json())))
    assert back == enc
    ids = [10, 20, 30, 40]
    np.testing.assert_array_equal(back.item_numbers(data.item_meta, ids),
                                  enc.item_numbers(data.item_meta, ids))
    np.testing.assert_array_equal(back.user_categories(data.user_meta, [1, 4]),
                                  enc.user_categories(data.user_meta, [1, 4]))


def test_groups_auto_follow_the_data() -> None:
    assert resolve_groups("auto", _data()) == ("genres", "year", "demographics", "time")
    assert resolve_groups("auto", _data(with_users=False, with_ts=False)) == ("genres", "year")
    assert resolve_groups(None, _data()) == ()
    assert resolve_groups(["time", "genres"], _data()) == ("genres", "time")
    enc = FeatureEncoder.fit(_data(), ["genres"])
    assert enc.n_item_numbers == 2 and enc.n_time == 0 and enc.user_cardinalities == []


def test_unknown_or_unavailable_group_raises() -> None:
    with pytest.raises(ConfigError, match="unknown feature group 'genre'"):
        resolve_groups(["genre"], _data())
    with pytest.raises(FieldError, match="demographics"):
        resolve_groups(["demographics"], _data(with_users=False))


def test_side_matrix_one_hot_encodes_categories_and_bins_numbers() -> None:
    """BayesianMF's side-feature matrix (moved here from models/bpmf, issue 9)."""
    meta = pd.DataFrame({"genres": ["A|B", "B", "", "C"], "gender": ["M", "F", "M", None],
                         "year": pd.array([1990, 1995, None, 2000], dtype="Int64"),
                         "title": ["t1", "t2", "t3", "t4"]}, index=[10, 11, 12, 13])
    S = side_matrix(meta, np.array([13, 10, 99]), n_bins=2)
    assert S is not None and S.shape[0] == 3
    np.testing.assert_allclose(np.linalg.norm(S[:2], axis=1), 1.0)
    assert not S[2].any()  # id 99 has no metadata
    assert side_matrix(meta[["title"]], meta.index.to_numpy(), max_levels=3) is None
