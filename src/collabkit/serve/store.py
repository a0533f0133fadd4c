"""The feedback store: a small interface, and its SQLite implementation.

The endpoints only see :class:`FeedbackStore`; :class:`SQLiteStore` is the default (Python's
``sqlite3``, WAL journal, ``synchronous=FULL``), so a server database can come later without
touching them.

Durability and idempotency
--------------------------
A feedback write is one row in ``requests`` keyed by the client's ``request_id``, then one
row per rating, inside its own savepoint of a ``BEGIN IMMEDIATE ... COMMIT`` transaction that
the store's single writer thread shares among every write waiting at that moment (group
commit, :mod:`collabkit.serve.writer`). :meth:`SQLiteStore.add_feedback` returns only after
that COMMIT, so an acknowledged write is on disk (``synchronous=FULL`` fsyncs the WAL at
every commit). A retried ``request_id`` finds its ``requests`` row and changes nothing, so a
client that lost the answer retries safely.

Schema versions
---------------
``PRAGMA user_version`` holds the schema version. :data:`MIGRATIONS` lists the SQL that takes
version ``n`` to ``n + 1``; opening a database applies the missing ones in one transaction,
and a database from a newer collabkit is refused rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from collabkit.errors import ConfigError
from collabkit.serve.writer import GroupCommitWriter

__all__ = ["FeedbackStore", "SQLiteStore", "StoredRating", "WriteResult", "MIGRATIONS",
           "SCHEMA_VERSION", "hash_token", "payload_hash"]

#: SQL taking the schema from version ``i`` to ``i + 1`` (index ``i``). Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE visitors (
        user_id    TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        n_rows     INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE feedback (
        id                INTEGER PRIMARY KEY,
        request_id        TEXT NOT NULL REFERENCES requests(request_id) ON DELETE CASCADE,
        seq               INTEGER NOT NULL,
        user_id           TEXT NOT NULL,
        item_id           TEXT NOT NULL,
        rating            REAL NOT NULL,
        created_at        REAL NOT NULL,
        model_fingerprint TEXT,
        UNIQUE (request_id, seq)
    );
    CREATE INDEX feedback_by_user ON feedback (user_id, id);
    CREATE INDEX requests_by_user ON requests (user_id);
    """,
    # 2: remember what each request stored, so a request id reused for different ratings is
    # refused instead of silently dropping them (rows from version 1 have no hash)
    """
    ALTER TABLE requests ADD COLUMN payload_hash TEXT;
    """,
    # 3: what the service recommended, a row per item of each served list (issue 11), for
    # watching the feedback loop (collabkit.serve.servedlog), and the catalogue each served
    # model had (items and their training ratings), so a report needs only the database
    """
    CREATE TABLE served (
        id                INTEGER PRIMARY KEY,
        list_id           INTEGER NOT NULL,
        served_at         REAL NOT NULL,
        user_id           TEXT NOT NULL,
        item_id           TEXT NOT NULL,
        rank              INTEGER NOT NULL,
        tier              TEXT NOT NULL,
        policy            TEXT NOT NULL,
        model_fingerprint TEXT
    );
    CREATE INDEX served_by_time ON served (served_at);
    CREATE INDEX served_by_user ON served (user_id);
    CREATE TABLE catalog (
        model_fingerprint TEXT NOT NULL,
        item_id           TEXT NOT NULL,
        n_ratings         INTEGER NOT NULL,
        PRIMARY KEY (model_fingerprint, item_id)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def hash_token(token: str) -> str:
    """SHA-256 of a visitor token: the database never holds a usable secret."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredRating:
    """A user's latest stored rating of one item."""

    item_id: str
    rating: float
    created_at: float


@dataclass(frozen=True)
class WriteResult:
    """What a feedback write did: ``duplicate`` when the request id was already stored;
    then ``same_payload`` says whether it stored the same user and ratings (unknown for
    requests stored before schema version 2: assumed the same)."""

    request_id: str
    duplicate: bool
    n_rows: int
    owner: str
    same_payload: bool = True


def payload_hash(user_id: str, rows: Sequence[tuple[str, float]]) -> str:
    """SHA-256 of a write's user and ``(item, rating)`` rows, in order."""
    text = json.dumps([user_id, [[str(i), float(r)] for i, r in rows]], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FeedbackStore(Protocol):
    """What the service needs from a feedback database."""

    kind: str

    @property
    def schema_version(self) -> int: ...

    def add_feedback(self, request_id: str, user_id: str,
                     rows: Sequence[tuple[str, float]],
                     model_fingerprint: str | None) -> WriteResult: ...

    def submit_feedback(self, request_id: str, user_id: str,
                        rows: Sequence[tuple[str, float]],
                        model_fingerprint: str | None) -> Future[WriteResult]: ...

    def ratings(self, user_id: str) -> list[StoredRating]: ...

    def delete_user(self, user_id: str) -> int: ...

    def add_visitor(self, user_id: str, token_hash: str) -> None: ...

    def visitor_for(self, token_hash: str) -> str | None: ...

    def integrity_ok(self) -> bool: ...

    def close(self) -> None: ...


class SQLiteStore:
    """:class:`FeedbackStore` in one SQLite file (created, with its folder, on first use).

    Reads use one connection per thread (each used only by its own thread). Every write
    goes to one writer thread (:class:`~collabkit.serve.writer.GroupCommitWriter`) that
    commits the writes waiting at that moment together, each in its own savepoint; a writer
    from another process still queues on SQLite's lock (``busy_timeout`` 5 s).
    """

    kind = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000,
                 max_batch: int = 256) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path.exists() and self.path.is_dir():
            raise ConfigError(f"--db {str(self.path)!r} is a folder; give a file path such as "
                              f"{str(self.path / 'feedback.sqlite3')!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate(self._conn())
        self.writer = GroupCommitWriter(self._conn, max_batch=max_batch,
                                        name="collabkit-feedback-writer")

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=self.busy_timeout_ms / 1000)
                conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.DatabaseError as e:
                raise ConfigError(f"--db {str(self.path)!r} is not a usable SQLite database "
                                  f"({e}); give a new path or restore it from a backup") from None
            if str(mode).lower() != "wal":
                raise ConfigError(f"--db {str(self.path)!r}: SQLite refused WAL mode ({mode}); "
                                  "put the database on a local disk")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"--db {str(self.path)!r} has feedback schema version {version}; this "
                    f"collabkit knows versions up to {SCHEMA_VERSION}. Upgrade collabkit, or "
                    "serve with a different --db")
            for v in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {v + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ feedback
    def add_feedback(self, request_id: str, user_id: str, rows: Sequence[tuple[str, float]],
                     model_fingerprint: str | None) -> WriteResult:
        """Store ``rows`` of ``(item_id, rating)`` for ``user_id`` once per ``request_id``.

        Returns after COMMIT. A request id seen before returns ``duplicate=True``, the
        user it was stored for (``owner``) and whether the ratings were the same, writing
        nothing.
        """
        return self.submit_feedback(request_id, user_id, rows, model_fingerprint).result()

    def submit_feedback(self, request_id: str, user_id: str,
                        rows: Sequence[tuple[str, float]],
                        model_fingerprint: str | None) -> Future[WriteResult]:
        """:meth:`add_feedback` without waiting: a future that resolves after the COMMIT
        (for an ``async`` caller, ``await asyncio.wrap_future(...)``)."""
        for item, rating in rows:
            if not math.isfinite(rating):
                raise ValueError(f"rating of item {item!r} is not finite")
        now = time.time()
        digest = payload_hash(user_id, rows)
        values = [(request_id, seq, user_id, item, float(r), now, model_fingerprint)
                  for seq, (item, r) in enumerate(rows)]

        def write(conn: sqlite3.Connection) -> WriteResult:
            cur = conn.execute(
                "INSERT INTO requests (request_id, user_id, n_rows, created_at, payload_hash) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
                (request_id, user_id, len(rows), now, digest))
            if cur.rowcount == 0:
                owner, n, old = conn.execute(
                    "SELECT user_id, n_rows, payload_hash FROM requests WHERE request_id = ?",
                    (request_id,)).fetchone()
                return WriteResult(request_id, True, int(n), str(owner),
                                   old is None or old == digest)
            conn.executemany(
                "INSERT INTO feedback (request_id, seq, user_id, item_id, rating, created_at, "
                "model_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
            return WriteResult(request_id, False, len(rows), user_id)

        return self.writer.submit(write)

    def ratings(self, user_id: str) -> list[StoredRating]:
        """The user's latest rating of each item they rated, oldest first."""
        rows = self._conn().execute(
            "SELECT item_id, rating, created_at FROM feedback WHERE id IN ("
            " SELECT MAX(id) FROM feedback WHERE user_id = ? GROUP BY item_id) ORDER BY id",
            (user_id,)).fetchall()
        return [StoredRating(str(i), float(r), float(t)) for i, r, t in rows]

    def delete_user(self, user_id: str) -> int:
        """Delete the user's feedback, request ids, served lists and visitor credential;
        feedback rows deleted."""
        def delete(conn: sqlite3.Connection) -> int:
            n = conn.execute("DELETE FROM feedback WHERE user_id = ?", (user_id,)).rowcount
            conn.execute("DELETE FROM requests WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM visitors WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM served WHERE user_id = ?", (user_id,))
            return int(n)

        return self.writer.run(delete)

    # ------------------------------------------------------------------ visitors
    def add_visitor(self, user_id: str, token_hash: str) -> None:
        created = time.time()
        self.writer.run(lambda conn: conn.execute(
            "INSERT INTO visitors (user_id, token_hash, created_at) VALUES (?, ?, ?)",
            (user_id, token_hash, created)))

    def visitor_for(self, token_hash: str) -> str | None:
        row = self._conn().execute("SELECT user_id FROM visitors WHERE token_hash = ?",
                                   (token_hash,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ catalogue
    def record_catalog(self, model_fingerprint: str, items: Sequence[object],
                       n_ratings: Sequence[int]) -> bool:
        """Remember a served model's catalogue once per fingerprint; True when written."""
        rows = [(model_fingerprint, str(i), int(n))
                for i, n in zip(items, n_ratings, strict=True)]

        def record(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM catalog WHERE model_fingerprint = ? LIMIT 1",
                            (model_fingerprint,)).fetchone() is not None:
                return False
            conn.executemany("INSERT INTO catalog (model_fingerprint, item_id, n_ratings) "
                             "VALUES (?, ?, ?)", rows)
            return True

        return self.writer.run(record)

    # ------------------------------------------------------------------ maintenance
    def integrity_ok(self) -> bool:
        row = self._conn().execute("PRAGMA integrity_check").fetchone()
        return row is not None and row[0] == "ok"

    def count_rows(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def close(self) -> None:
        """Finish the queued writes, checkpoint the WAL into the main file and close every
        connection."""
        self.writer.close()
        with self._lock:
            conns, self._all = self._all, []
        for i, conn in enumerate(conns):
            try:
                if i == 0:  # the first connection opened: never the writer's (closed above)
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
