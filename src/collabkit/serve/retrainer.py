"""Retraining from stored feedback (issue 11): ``collabkit retrain MODEL --db PATH --out NEW``
and ``collabkit serve --retrain-every N``.

:func:`feedback_frame` reads the feedback table as :func:`collabkit.retrain.retrain` wants it
(ids in the model's own types). :class:`Retrainer` counts new feedback rows in the service;
after every ``N`` it runs ``python -m collabkit retrain CURRENT --db DB --out NEW --json`` in a
**separate process** (serving never waits: requests go on in this one), and when the report
says *promote* it loads ``NEW`` and swaps it in atomically (:meth:`ServiceContext.reload`).
``NEW`` is a new folder beside the first served model, ``NAME.retrained-<UTC time>``; no
folder is ever replaced, so the model a user gave ``collabkit serve`` stays as it was. Every
retrain starts from that first model (its training ratings plus all feedback stored at the
time), never from a retrained one, so ratings deleted with "forget me" are gone from the
next promoted model; the comparison is against that first model too.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collabkit.serve.context import ServiceContext

__all__ = ["feedback_frame", "Retrainer"]

LOG = logging.getLogger("collabkit.serve")


def _typed(values: pd.Series, int_ids: bool) -> np.ndarray:
    """Stored id text as the model's id type: canonical integers become ints when the model's
    ids are integers (any other text keeps the column as text)."""
    text = values.astype(str)
    if int_ids:
        as_int = pd.to_numeric(text, errors="coerce")
        canonical = as_int.notna() & (as_int.astype("Int64").astype(str) == text)
        if canonical.all():
            return as_int.astype(np.int64).to_numpy()
        out = text.to_numpy(dtype=object)
        out[canonical.to_numpy()] = as_int[canonical].astype(np.int64).tolist()
        return out
    return text.to_numpy(dtype=object)


def feedback_frame(db: str | Path, model: Any) -> pd.DataFrame:
    """Every stored feedback row of database ``db``: ``user``, ``item``, ``rating``, ``time``
    (Unix seconds), oldest first, ids in ``model``'s types."""
    path = Path(db)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        frame = pd.read_sql_query("SELECT user_id, item_id, rating, created_at FROM feedback "
                                  "ORDER BY id", conn)
    finally:
        conn.close()
    kind = (model.user_vocab_.all_ids.dtype.kind, model.item_vocab_.all_ids.dtype.kind)
    return pd.DataFrame({"user": _typed(frame["user_id"], kind[0] in "iu"),
                         "item": _typed(frame["item_id"], kind[1] in "iu"),
                         "rating": frame["rating"].astype(np.float64),
                         "time": frame["created_at"].astype(np.float64)})


class Retrainer:
    """Retrain in a child process after every ``every`` new feedback rows; promote on success.

    ``runs`` lists a dict per finished run (``report`` from the child's JSON, ``promoted``,
    ``error``); :meth:`wait` blocks until a given number have finished (for tests).
    """

    def __init__(self, ctx: ServiceContext, every: int, *, holdout_frac: float = 0.2,
                 timeout: float = 3600.0) -> None:
        self.ctx = ctx
        self.every = int(every)
        self.holdout_frac = float(holdout_frac)
        self.timeout = float(timeout)
        self.base = Path(ctx.config.model).resolve()
        self.pending = 0
        self.runs: list[dict[str, Any]] = []
        self._running = False
        self._lock = threading.Condition()
        self._seq = 0

    def note(self, n_rows: int) -> None:
        """``n_rows`` new feedback rows were committed; maybe start a retrain (never waits)."""
        with self._lock:
            self.pending += int(n_rows)
            self._maybe_start()

    def _maybe_start(self) -> None:
        if self._running or self.pending < self.every:
            return
        self.pending = 0
        self._running = True
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = self.base.with_name(f"{self.base.name}.retrained-{stamp}-{self._seq}")
        threading.Thread(target=self._run, args=(out,), name="collabkit-retrain",
                         daemon=True).start()

    def _run(self, out: Path) -> None:
        # always from the model serve was given, never from a retrained one: its training
        # ratings plus the feedback stored *now*, so a forgotten visitor's ratings leave the
        # served model at the next promoted retrain
        current = self.base
        cmd = [sys.executable, "-m", "collabkit", "retrain", str(current), "--db",
               str(self.ctx.db_path), "--out", str(out), "--holdout-frac",
               str(self.holdout_frac), "--json"]
        run: dict[str, Any] = {"model": str(current), "out": str(out), "report": None,
                               "promoted": False, "error": None}
        self.ctx.served.flush()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
            if done.returncode != 0:
                run["error"] = (done.stderr.strip().splitlines() or ["no message"])[-1]
            else:
                run["report"] = json.loads(done.stdout)
                if run["report"]["promote"]:
                    self.ctx.reload(out)
                    run["promoted"] = True
        except Exception as e:  # the service keeps serving the model it has
            run["error"] = f"{type(e).__name__}: {e}"
        outcome = "failed" if run["error"] else "promoted" if run["promoted"] else "kept"
        self.ctx.metrics.retrains.labels(outcome).inc()
        if run["error"]:
            LOG.error("retrain failed, still serving %s: %s", current, run["error"])
        else:
            rep = run["report"]
            LOG.info("retrain: RMSE on the %d newest feedback ratings old %.4f, new %.4f: %s",
                     rep["n_holdout"], rep["old_rmse"], rep["new_rmse"],
                     f"serving {out}" if run["promoted"] else "kept the old model")
        with self._lock:
            self.runs.append(run)
            self._running = False
            self._lock.notify_all()
            self._maybe_start()

    def wait(self, n_runs: int, timeout: float) -> bool:
        """Block until ``n_runs`` runs have finished; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.runs) < n_runs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True
