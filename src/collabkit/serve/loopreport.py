"""The feedback loop, watched: exposure numbers of the served-list log, per time window.

One implementation (:func:`collabkit.metrics.exposure.exposure_report`) feeds both
``/metrics`` and ``collabkit loop-report --db PATH``: catalog coverage of served items,
exposure Gini, mean popularity percentile of recommended items (popularity = the serving
model's training ratings per item) and the share of lists by tier. The catalogue is the one
the database recorded for the model that served the newest list in the report.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pandas as pd

from collabkit.errors import ConfigError, DataError
from collabkit.metrics.exposure import exposure_report
from collabkit.serve.servedlog import read_served

__all__ = ["loop_report", "read_catalog", "recent_numbers", "WINDOWS"]

#: the trailing windows ``/metrics`` reports, in seconds
WINDOWS: dict[str, float] = {"1h": 3600.0, "24h": 86400.0}


def read_catalog(path: str | Path, model: str | None = None) -> tuple[str, pd.Series]:
    """``(fingerprint, training ratings per item id)`` of ``model``, or of the model recorded
    last when ``model`` is None."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        if model is None:
            row = conn.execute("SELECT model_fingerprint FROM catalog ORDER BY rowid DESC "
                               "LIMIT 1").fetchone()
            if row is None:
                raise DataError(f"{str(path)!r} records no model catalogue; it is filled when "
                                "`collabkit serve` starts with this --db")
            model = str(row[0])
        frame = pd.read_sql_query("SELECT item_id, n_ratings FROM catalog WHERE "
                                  "model_fingerprint = ?", conn, params=(model,))
    finally:
        conn.close()
    return model, frame.set_index("item_id")["n_ratings"]


def _check_db(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--db {str(p)!r} does not exist; give the feedback database "
                          "`collabkit serve` wrote (MODEL.feedback.sqlite3 by default)")
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"--db {str(p)!r} is not a SQLite database ({e})") from None
    if version < 3:
        raise ConfigError(f"--db {str(p)!r} has feedback schema version {version}, from before "
                          "served lists were logged; serve it once with this collabkit to "
                          "upgrade it")
    return p


def loop_report(path: str | Path, *, window: str | None = None, since: float | None = None
                ) -> pd.DataFrame:
    """Exposure numbers of the served lists in database ``path``: one row per ``window``
    (a pandas frequency such as ``"1h"``) and a last row ``"all"``; rows from ``since``
    (Unix seconds) on. Columns as :func:`~collabkit.metrics.exposure.exposure_report`."""
    p = _check_db(path)
    return _report(p, read_served(p, since), window)


def _report(path: Path, log: pd.DataFrame, window: str | None) -> pd.DataFrame:
    model = str(log["model"].iloc[-1]) if len(log) and log["model"].notna().any() else None
    _, popularity = read_catalog(path, model)
    if log.empty:
        return pd.DataFrame([{"window_start": "all", "n_lists": 0, "n_served": 0,
                              "coverage": 0.0, "gini": 0.0,
                              "mean_popularity_pct": float("nan")}])
    return exposure_report(log, catalog=popularity.index, popularity=popularity,
                           window=window)


def recent_numbers(path: str | Path, now: float | None = None) -> dict[str, dict[str, Any]]:
    """``{window: numbers}`` over each trailing window of :data:`WINDOWS`, for ``/metrics``."""
    now = time.time() if now is None else now
    p = _check_db(path)
    log = read_served(p, now - max(WINDOWS.values()))  # one read; the shorter windows cut it
    seconds_ago = now - log["time"].astype("int64").to_numpy() / 1e9
    out: dict[str, dict[str, Any]] = {}
    for name, seconds in WINDOWS.items():
        part = log[seconds_ago <= seconds].reset_index(drop=True)
        row = _report(p, part, None).iloc[-1]
        out[name] = {k: row[k] for k in row.index if k != "window_start"}
    return out
