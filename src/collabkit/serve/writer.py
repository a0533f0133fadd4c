"""One writer thread with group commit: every write of a SQLite feedback database.

Many request threads each running their own ``BEGIN IMMEDIATE ... COMMIT`` with
``synchronous=FULL`` queue on SQLite's write lock and on one fsync each; SQLite's busy
handler then sleeps in steps of up to 100 ms, which is where the write tail came from
(issue 10: write p99 1.6-1.8 s under 32 clients). Here a single thread owns the only
writing connection. It takes every job waiting at that moment (up to ``max_batch``), runs
each inside its own ``SAVEPOINT`` of one transaction, commits once, and only then answers
each caller: the ack still comes after the COMMIT (and its fsync), for many writes at once.

A job that raises is rolled back to its savepoint and fails alone; the others in the batch
still commit. If the BEGIN or the COMMIT itself fails, nothing of the batch is stored and
each job is run again on its own transaction, so every caller gets its own outcome.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["GroupCommitWriter", "WriterClosedError"]

LOG = logging.getLogger("collabkit.serve")
T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
_STOP = object()


class WriterClosedError(RuntimeError):
    """A write was submitted after :meth:`GroupCommitWriter.close`."""


class GroupCommitWriter:
    """Runs write jobs ``fn(conn)`` on one thread, many per transaction.

    Parameters
    ----------
    connect : callable
        Opens the writing connection (autocommit mode, ``isolation_level=None``); called
        once, on the writer thread.
    max_batch : int
        Most jobs in one transaction.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, max_batch: int = 256,
                 name: str = "collabkit-writer") -> None:
        self.max_batch = int(max_batch)
        self._connect = connect
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        #: transactions committed and jobs run (for tests and metrics)
        self.commits = 0
        self.jobs = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``job``; its future resolves after the transaction holding it committed."""
        fut: Future[T] = Future()
        with self._close_lock:
            if self._closed:
                raise WriterClosedError("the feedback store is closed")
            self._queue.put((job, fut))
        return fut

    def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`submit` and wait: ``job``'s result once committed, or its exception."""
        return self.submit(job).result()

    def close(self) -> None:
        """Finish the queued jobs, stop the thread and close the connection."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        try:
            self._conn = self._connect()
        except BaseException as e:  # reported to the constructor's caller
            self._open_error = e
            self._closed = True
            self._ready.set()
            return
        self._ready.set()
        stop = False
        while not stop:
            batch: list[tuple[Job, Future[Any]]] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
        self._conn.close()

    def _commit(self, batch: list[tuple[Job, Future[Any]]]) -> None:
        conn = self._conn
        if conn is None:  # never: the loop opens it before the first batch
            raise RuntimeError("the writer has no connection")
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _ in batch:
                conn.execute("SAVEPOINT job")
                try:
                    value = job(conn)
                except Exception as e:  # this job's rows fail alone
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, e))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    LOG.exception("feedback store: ROLLBACK failed")
            if len(batch) > 1:  # nothing of the batch is stored: give each its own try
                for one in batch:
                    self._commit([one])
            else:
                batch[0][1].set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        self.commits += 1
        self.jobs += len(batch)
        for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
