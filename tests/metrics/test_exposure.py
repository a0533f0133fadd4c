"""Exposure metrics of served lists (issue 11): every number checked against a hand count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabkit.errors import ConfigError, DataError
from collabkit.metrics.exposure import (
    catalog_coverage,
    check_log,
    exposure_gini,
    exposure_report,
    gini,
    mean_popularity_percentile,
    popularity_percentiles,
    tier_shares,
)

CATALOG = ["a", "b", "c", "d", "e"]
# popularity percentiles by hand: e 0 -> rank 1; c, d 10 -> ranks 2, 3 (tie: 2.5); b 4; a 5
POPULARITY = pd.Series({"a": 50, "b": 40, "c": 10, "d": 10, "e": 0})
PCT = {"a": 100.0, "b": 80.0, "c": 50.0, "d": 50.0, "e": 20.0}


@pytest.fixture
def log() -> pd.DataFrame:
    """Four lists of two items; the first two in hour 0, the last two in hour 1."""
    rows = [
        (0, "u1", "a", 1, "personal"), (0, "u1", "b", 2, "personal"),
        (60, "u2", "a", 1, "personal"), (60, "u2", "c", 2, "personal"),
        (3600, "u1", "a", 1, "bias"), (3600, "u1", "b", 2, "bias"),
        (3700, "u3", "a", 1, "popularity"), (3700, "u3", "d", 2, "popularity"),
    ]
    return pd.DataFrame(rows, columns=["time", "user", "item", "rank", "tier"])


def test_gini_known_answers() -> None:
    assert gini(np.array([3, 3, 3, 3])) == 0.0
    assert gini(np.array([0, 0, 0, 7])) == pytest.approx(3 / 4)  # (n - 1) / n
    assert gini(np.array([0, 0, 0])) == 0.0
    # sorted 0,1,1,2,4: sum (2j - n - 1) x = -2 + 0 + 4 + 16 = 18; / (5 * 8)
    assert gini(np.array([4, 2, 1, 1, 0])) == pytest.approx(18 / 40)


def test_whole_log_matches_hand_count(log: pd.DataFrame) -> None:
    assert catalog_coverage(log, CATALOG) == pytest.approx(4 / 5)
    assert catalog_coverage(log, 5) == pytest.approx(4 / 5)
    assert exposure_gini(log, CATALOG) == pytest.approx(0.45)  # counts a4 b2 c1 d1 e0
    assert exposure_gini(log, 5) == pytest.approx(0.45)
    assert popularity_percentiles(POPULARITY).to_dict() == PCT
    assert mean_popularity_percentile(log, POPULARITY) == pytest.approx(660 / 8)
    assert tier_shares(log) == {"bias": 0.25, "personal": 0.5, "popularity": 0.25}


def test_report_per_hour_matches_hand_count(log: pd.DataFrame) -> None:
    rep = exposure_report(log, catalog=CATALOG, popularity=POPULARITY, window="1h")
    assert len(rep) == 3 and rep["window_start"].iloc[-1] == "all"
    first, second, overall = (rep.iloc[j] for j in range(3))
    assert first["window_start"] == pd.Timestamp(0, unit="s", tz="UTC")
    assert second["window_start"] == pd.Timestamp(3600, unit="s", tz="UTC")
    # hour 0: a, b, a, c -> 3 of 5 items; counts a2 b1 c1: (2*1 + 4*2) / (5*4) = 0.5
    assert (first["n_lists"], first["n_served"]) == (2, 4)
    assert first["coverage"] == pytest.approx(0.6)
    assert first["gini"] == pytest.approx(0.5)
    assert first["mean_popularity_pct"] == pytest.approx((100 + 80 + 100 + 50) / 4)
    assert (first["share_personal"], first["share_bias"], first["share_popularity"]) == \
        (1.0, 0.0, 0.0)
    # hour 1: a, b, a, d
    assert second["coverage"] == pytest.approx(0.6)
    assert second["gini"] == pytest.approx(0.5)
    assert (second["share_bias"], second["share_popularity"]) == (0.5, 0.5)
    assert (overall["n_lists"], overall["n_served"]) == (4, 8)
    assert overall["coverage"] == pytest.approx(0.8)
    assert overall["gini"] == pytest.approx(0.45)
    assert overall["mean_popularity_pct"] == pytest.approx(82.5)


def test_datetime_times_and_list_id(log: pd.DataFrame) -> None:
    log = log.assign(time=pd.to_datetime(log["time"], unit="s"),
                     list_id=[1, 1, 2, 2, 3, 3, 4, 4])
    rep = exposure_report(log, catalog=CATALOG, window=None)
    assert len(rep) == 1 and rep["n_lists"].iloc[0] == 4
    assert np.isnan(rep["mean_popularity_pct"].iloc[0])  # no popularity given


def test_bad_logs_name_the_problem(log: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"lacks column\(s\) \['tier'\]"):
        check_log(log.drop(columns="tier"))
    with pytest.raises(DataError, match="rank 0 in row 3"):
        check_log(log.assign(rank=[1, 2, 1, 0, 1, 2, 1, 2]))
    with pytest.raises(DataError, match="time 'soon' in row 0"):
        check_log(log.assign(time=["soon"] + ["2026-01-01"] * 7))
    with pytest.raises(DataError, match="mixes tiers"):
        tier_shares(log.assign(tier=["personal", "bias"] + ["bias"] * 6))
    with pytest.raises(DataError, match="served item 'a'"):
        mean_popularity_percentile(log, POPULARITY.drop("a"))
    with pytest.raises(ConfigError, match="window 'often'"):
        exposure_report(log, catalog=CATALOG, window="often")
    with pytest.raises(ConfigError, match="smaller than the 4 distinct"):
        exposure_gini(log, 3)
