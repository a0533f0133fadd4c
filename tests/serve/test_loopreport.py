"""The loop report (issue 11): `/metrics` and `collabkit loop-report` give the numbers counted
by hand on a small served-list log."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from collabkit.cli.main import main
from collabkit.serve.loopreport import loop_report
from collabkit.serve.store import SQLiteStore

T0 = 1767225600.0  # 2026-01-01 00:00:00 UTC
# catalogue: items 1-4 with 10, 5, 5, 0 training ratings
# popularity percentiles (pandas rank, ties averaged, top = 100): 1: 100, 2 and 3: 62.5, 4: 25
LISTS = [  # (seconds after T0, user, tier, items)
    (60, "u1", "personal", ["1", "2"]),
    (120, "u2", "bias", ["1", "3"]),
    (3700, "u1", "personal", ["1", "2"]),
]
# by hand, all three lists: served 1 x3, 2 x2, 3 x1, 4 x0 -> coverage 3/4;
#   Gini of [0, 1, 2, 3]: (-3*0 - 1*1 + 1*2 + 3*3) / (4 * 6) = 10/24;
#   popularity: (100 + 62.5 + 100 + 62.5 + 100 + 62.5) / 6 = 81.25; personal 2/3, bias 1/3
ALL = {"n_lists": 3, "n_served": 6, "coverage": 0.75, "gini": 10 / 24,
       "mean_popularity_pct": 81.25, "share_bias": 1 / 3, "share_personal": 2 / 3}
# first hour, lists 1-2: counts [2, 1, 1, 0] -> Gini (-3*0 - 1*1 + 1*1 + 3*2) / (4*4) = 6/16
HOUR0 = {"n_lists": 2, "n_served": 4, "coverage": 0.75, "gini": 6 / 16,
         "mean_popularity_pct": 81.25, "share_bias": 0.5, "share_personal": 0.5}
# second hour, list 3: counts [1, 1, 0, 0] -> Gini (-3*0 - 1*0 + 1*1 + 3*1) / (4*2) = 4/8
HOUR1 = {"n_lists": 1, "n_served": 2, "coverage": 0.5, "gini": 0.5,
         "mean_popularity_pct": 81.25, "share_bias": 0.0, "share_personal": 1.0}


def _fixture(db: Path, t0: float, times: list[float] | None = None) -> None:
    store = SQLiteStore(db)
    store.record_catalog("fp-test", ["1", "2", "3", "4"], [10, 5, 5, 0])
    store.close()
    conn = sqlite3.connect(db)
    for j, (dt, user, tier, items) in enumerate(LISTS):
        at = t0 + (dt if times is None else times[j])
        conn.executemany(
            "INSERT INTO served (list_id, served_at, user_id, item_id, rank, tier, policy, "
            "model_fingerprint) VALUES (?, ?, ?, ?, ?, ?, 'top', 'fp-test')",
            [(j, at, user, item, r + 1, tier, ) for r, item in enumerate(items)])
    conn.commit()
    conn.close()


def _check(row: dict[str, Any], want: dict[str, float]) -> None:
    for key, value in want.items():
        assert row[key] == pytest.approx(value), key


def test_loop_report_hand_count(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    _fixture(db, T0)
    table = loop_report(db, window="1h")
    assert table["window_start"].iloc[:2].astype(str).tolist() == [
        "2026-01-01 00:00:00+00:00", "2026-01-01 01:00:00+00:00"]
    for row, want in zip(table.to_dict("records"), [HOUR0, HOUR1, ALL], strict=True):
        _check(row, want)
    assert loop_report(db).to_dict("records")[0]["window_start"] == "all"


def test_cli_loop_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "fb.sqlite3"
    _fixture(db, T0)
    assert main(["loop-report", "--db", str(db), "--window", "1h", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [w["window_start"] for w in got["windows"]] == [
        "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "all"]
    for row, want in zip(got["windows"], [HOUR0, HOUR1, ALL], strict=True):
        _check(row, want)
    assert main(["loop-report", "--db", str(db)]) == 0
    assert "served lists" in capsys.readouterr().out


def test_cli_loop_report_errors_name_the_flag(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loop-report", "--db", str(tmp_path / "none.sqlite3")]) != 0
    err = capsys.readouterr().err
    assert "--db" in err and "does not exist" in err and err.count("\n") == 1
    db = tmp_path / "fb.sqlite3"
    _fixture(db, T0)
    assert main(["loop-report", "--db", str(db), "--window", "soon"]) != 0
    assert "--window 'soon' is not a positive time span" in capsys.readouterr().err
    old = tmp_path / "v2.sqlite3"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    assert main(["loop-report", "--db", str(old)]) != 0
    assert "schema version 2" in capsys.readouterr().err


def _gauge(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    assert found, f"{name}{{{want}}} not in /metrics"
    return float(found.group(1))


def test_metrics_gauges_hand_count(client: Any) -> None:
    import time

    ctx = client.app.state.ctx
    now = time.time()
    # lists 1-2 ten minutes ago (in the last hour), list 3 two hours ago (last 24 h only)
    _fixture(ctx.db_path, now, times=[-600, -590, -7200])
    text = client.get("/metrics").text
    for window, want in (("1h", HOUR0), ("24h", ALL)):
        assert _gauge(text, "collabkit_loop_lists", window=window) == want["n_lists"]
        assert _gauge(text, "collabkit_loop_catalog_coverage", window=window) == \
            pytest.approx(want["coverage"])
        assert _gauge(text, "collabkit_loop_exposure_gini", window=window) == \
            pytest.approx(want["gini"])
        assert _gauge(text, "collabkit_loop_mean_popularity_percentile", window=window) == \
            pytest.approx(want["mean_popularity_pct"])
        for tier in ("bias", "personal"):
            assert _gauge(text, "collabkit_loop_list_share", window=window, tier=tier) == \
                pytest.approx(want[f"share_{tier}"])
