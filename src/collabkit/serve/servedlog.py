"""The served-list log: a row per item of every recommendation list the service answers with.

``served`` (schema version 3 of :mod:`collabkit.serve.store`) holds ``list_id``,
``served_at``, ``user_id``, ``item_id``, ``rank``, ``tier``, ``policy`` and the model
fingerprint. Requests never write it themselves: :meth:`ServedLog.add` appends to an
in-memory queue and returns; a background thread writes the queue in one transaction every
``interval`` seconds (or sooner when ``batch`` rows wait). A crash loses at most the last
interval of *log* rows, never feedback, which is written synchronously. Given the feedback
store's ``writer`` (:class:`collabkit.serve.writer.GroupCommitWriter`), the batches go through
it, so the process has one writing connection and the log never holds SQLite's write lock
against a feedback write; without it the log opens its own connection.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from collabkit.serve.writer import GroupCommitWriter

__all__ = ["ServedLog", "read_served"]

LOG = logging.getLogger("collabkit.serve")
_Row = tuple[int, float, str, str, int, str, str, str | None]
_INSERT = ("INSERT INTO served (list_id, served_at, user_id, item_id, rank, tier, policy, "
           "model_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


class ServedLog:
    """Batched, background writes of served lists into the ``served`` table of ``path``."""

    def __init__(self, path: str | Path, *, interval: float = 0.5, batch: int = 2000,
                 busy_timeout_ms: int = 5000, writer: GroupCommitWriter | None = None) -> None:
        self.path = Path(path)
        self._writer = writer
        self.interval = float(interval)
        self.batch = int(batch)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._rows: list[_Row] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name="collabkit-served-log",
                                        daemon=True)
        self._thread.start()

    def add(self, user_id: str, items: Sequence[object], tier: str, policy: str,
            model_fingerprint: str | None) -> None:
        """Queue one served list (``items`` in rank order); returns at once."""
        if not items:
            return
        list_id = secrets.randbits(62)
        now = time.time()
        rows = [(list_id, now, str(user_id), str(item), rank, str(tier), str(policy),
                 model_fingerprint) for rank, item in enumerate(items, start=1)]
        with self._lock:
            self._rows.extend(rows)
            full = len(self._rows) >= self.batch
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every queued row now (the caller waits); rows written."""
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            if self._writer is not None:
                try:
                    self._writer.run(lambda conn: conn.executemany(_INSERT, rows))
                except sqlite3.Error:
                    self.failed += len(rows)
                    raise
                self.written += len(rows)
                return len(rows)
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self.failed += len(rows)
                raise
            self.written += len(rows)
            return len(rows)

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def close(self) -> None:
        """Stop the thread and write what is queued."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self.flush()
        except sqlite3.Error as e:
            LOG.error("served-list log: %d rows not written at shutdown (%s)", self.pending(), e)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False,
                                         timeout=self.busy_timeout_ms / 1000)
            self._conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        return self._conn

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except sqlite3.Error as e:  # the log must never take the service down
                LOG.error("served-list log: a batch was not written (%s)", e)


def read_served(path: str | Path, since: float | None = None) -> pd.DataFrame:
    """The ``served`` table of database ``path`` as a DataFrame: ``list_id``, ``time``
    (UTC timestamps), ``user``, ``item``, ``rank``, ``tier``, ``policy``, ``model`` (its
    fingerprint), oldest first; rows served at or after ``since`` (Unix seconds) only."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        frame = pd.read_sql_query(
            "SELECT list_id, served_at, user_id AS user, item_id AS item, rank, tier, policy, "
            "model_fingerprint AS model FROM served WHERE served_at >= ? ORDER BY id", conn,
            params=(float("-inf") if since is None else float(since),))
    finally:
        conn.close()
    frame.insert(1, "time", pd.to_datetime(frame.pop("served_at"), unit="s", utc=True))
    return frame
