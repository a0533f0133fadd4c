"""The single writer with group commit (issue 10: the write tail under 32 clients)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from collabkit.serve.store import SQLiteStore, WriteResult
from collabkit.serve.writer import GroupCommitWriter, WriterClosedError


def _connect(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        return conn
    return connect


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    conn.commit()
    conn.close()
    return path


def _rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT k, v FROM t").fetchall())
    finally:
        conn.close()


def _insert(k: str, v: int) -> Callable[[sqlite3.Connection], str]:
    def job(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, v))
        return k
    return job


def _hold(writer: GroupCommitWriter) -> tuple[threading.Event, Future[None]]:
    """A job that keeps the writer busy until the returned event is set, so the jobs submitted
    meanwhile wait in the queue and form the next batch together."""
    started, release = threading.Event(), threading.Event()

    def job(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(30)

    fut = writer.submit(job)
    assert started.wait(30)
    return release, fut


def test_waiting_jobs_commit_together_and_results_come_after_commit(db: Path) -> None:
    writer = GroupCommitWriter(_connect(db))
    release, first = _hold(writer)
    futures = [writer.submit(_insert(f"k{i}", i)) for i in range(50)]
    assert not any(f.done() for f in futures)
    assert _rows(db) == {}  # nothing is visible, and nothing answered, before the COMMIT
    release.set()
    assert [f.result(30) for f in futures] == [f"k{i}" for i in range(50)]
    first.result(30)
    assert _rows(db) == {f"k{i}": i for i in range(50)}
    assert (writer.commits, writer.jobs) == (2, 51)  # the held job, then the 50 at once
    writer.close()


def test_a_failing_job_fails_alone(db: Path) -> None:
    writer = GroupCommitWriter(_connect(db))
    writer.run(_insert("taken", 0))
    release, _ = _hold(writer)
    good1 = writer.submit(_insert("a", 1))
    bad = writer.submit(_insert("taken", 2))  # primary key violation
    boom = writer.submit(lambda conn: 1 / 0)
    good2 = writer.submit(_insert("b", 3))
    release.set()
    assert (good1.result(30), good2.result(30)) == ("a", "b")
    with pytest.raises(sqlite3.IntegrityError):
        bad.result(30)
    with pytest.raises(ZeroDivisionError):
        boom.result(30)
    assert _rows(db) == {"taken": 0, "a": 1, "b": 3}
    writer.close()


def test_a_batch_whose_commit_fails_is_retried_job_by_job(db: Path) -> None:
    writer = GroupCommitWriter(_connect(db))
    release, _ = _hold(writer)
    good1 = writer.submit(_insert("a", 1))
    # ends the whole transaction under the writer: the batch cannot commit as one
    wrecker = writer.submit(lambda conn: conn.execute("ROLLBACK"))
    good2 = writer.submit(_insert("b", 2))
    release.set()
    assert (good1.result(30), good2.result(30)) == ("a", "b")
    with pytest.raises(sqlite3.OperationalError):
        wrecker.result(30)
    assert _rows(db) == {"a": 1, "b": 2}
    writer.close()


def test_close_finishes_queued_jobs_then_refuses_new_ones(db: Path) -> None:
    writer = GroupCommitWriter(_connect(db))
    release, _ = _hold(writer)
    futures = [writer.submit(_insert(f"k{i}", i)) for i in range(5)]
    closer = threading.Thread(target=writer.close)
    closer.start()
    release.set()
    closer.join(30)
    assert all(f.result(0) for f in futures) and len(_rows(db)) == 5
    with pytest.raises(WriterClosedError):
        writer.submit(_insert("late", 0))


def test_store_batches_concurrent_feedback_with_same_answers(tmp_path: Path) -> None:
    """32 threads write while the writer is held, so their writes share one transaction:
    fresh ids are stored once, a retry in the same batch is a duplicate, and a request id
    reused for other ratings is flagged, exactly as one write per transaction did."""
    store = SQLiteStore(tmp_path / "fb.sqlite3")
    store.add_feedback("old", "u0", [("1", 4.0)], None)
    release, _ = _hold(store.writer)
    results: dict[str, WriteResult] = {}

    def write(name: str, request_id: str, user: str, rows: list[tuple[str, float]]) -> None:
        results[name] = store.add_feedback(request_id, user, rows, "fp")

    jobs = [(f"w{i}", f"r{i}", f"u{i}", [(str(i), 3.0), (str(i + 100), 2.5)])
            for i in range(30)]
    jobs += [("retry-old", "old", "u0", [("1", 4.0)]), ("reused-old", "old", "u0", [("1", 1.0)])]
    threads = [threading.Thread(target=write, args=j) for j in jobs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while store.writer._queue.qsize() < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert results == {}  # nobody is answered before the commit
    commits = store.writer.commits
    release.set()
    for t in threads:
        t.join(30)
    assert store.writer.commits == commits + 2  # the held job's, then everyone else's
    for i in range(30):
        r = results[f"w{i}"]
        assert (r.duplicate, r.n_rows, r.owner) == (False, 2, f"u{i}")
    retry, reused = results["retry-old"], results["reused-old"]
    assert retry.duplicate and retry.same_payload
    assert reused.duplicate and not reused.same_payload
    assert store.count_rows() == 1 + 30 * 2 and store.integrity_ok()
    store.close()
