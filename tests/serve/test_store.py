"""The SQLite feedback store (issue 10): pragmas, versioned schema, idempotent writes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from collabkit.errors import ConfigError
from collabkit.serve.store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, hash_token


def test_new_database_is_wal_full_and_versioned(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sub" / "fb.sqlite3")
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version == SCHEMA_VERSION == 3
    assert store.integrity_ok()
    store.close()
    assert SQLiteStore(tmp_path / "sub" / "fb.sqlite3").schema_version == 3  # reopened as is


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}.*Upgrade"):
        SQLiteStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("future",)]


def test_not_a_database_is_refused_and_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my notes, not a database\n" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        SQLiteStore(path)
    assert path.read_text() == "my notes, not a database\n" * 100
    with pytest.raises(ConfigError, match="is a folder"):
        SQLiteStore(tmp_path)


def test_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO requests VALUES ('old', 'u', 1, 0.0)")
    conn.execute("INSERT INTO feedback (request_id, seq, user_id, item_id, rating, created_at) "
                 "VALUES ('old', 0, 'u', '10', 4.0, 0.0)")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    assert store.schema_version == SCHEMA_VERSION == 3
    assert [(r.item_id, r.rating) for r in store.ratings("u")] == [("10", 4.0)]
    # a retry of a version-1 request cannot be compared (no hash): taken as the same
    again = store.add_feedback("old", "u", [("10", 4.0)], None)
    assert again.duplicate and again.same_payload and store.count_rows() == 1


def test_request_id_reused_for_other_ratings_is_flagged(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fb.sqlite3")
    store.add_feedback("r1", "u", [("10", 4.0)], None)
    assert store.add_feedback("r1", "u", [("10", 4.0)], None).same_payload
    other = store.add_feedback("r1", "u", [("10", 5.0)], None)
    assert other.duplicate and not other.same_payload
    assert [(r.item_id, r.rating) for r in store.ratings("u")] == [("10", 4.0)]


def test_writes_are_idempotent_by_request_id(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fb.sqlite3")
    first = store.add_feedback("r1", "u", [("10", 4.0), ("11", 3.0)], "fp")
    again = store.add_feedback("r1", "u", [("10", 4.0), ("11", 3.0)], "fp")
    assert (first.duplicate, first.n_rows) == (False, 2)
    assert (again.duplicate, again.n_rows, again.owner) == (True, 2, "u")
    assert store.count_rows() == 2
    with pytest.raises(ValueError, match="not finite"):
        store.add_feedback("r2", "u", [("10", float("nan"))], None)
    assert store.count_rows() == 2


def test_latest_rating_of_an_item_wins(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fb.sqlite3")
    store.add_feedback("a", "u", [("10", 4.0), ("11", 3.0)], None)
    store.add_feedback("b", "u", [("10", 1.5)], None)
    store.add_feedback("c", "other", [("10", 5.0)], None)
    assert [(r.item_id, r.rating) for r in store.ratings("u")] == [("11", 3.0), ("10", 1.5)]
    assert store.ratings("nobody") == []


def test_delete_user_removes_feedback_requests_and_visitor(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fb.sqlite3")
    store.add_visitor("v-1", hash_token("secret"))
    store.add_feedback("a", "v-1", [("10", 4.0)], None)
    store.add_feedback("b", "keep", [("10", 4.0)], None)
    assert store.visitor_for(hash_token("secret")) == "v-1"
    assert store.delete_user("v-1") == 1
    assert store.visitor_for(hash_token("secret")) is None
    assert store.ratings("v-1") == [] and len(store.ratings("keep")) == 1
    # its request id is free again
    assert store.add_feedback("a", "v-1", [("10", 2.0)], None).duplicate is False


def test_concurrent_writers_from_many_threads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fb.sqlite3")
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for n in range(25):
                store.add_feedback(f"{w}-{n}", f"user{w}", [(str(n), 3.0)], None)
                store.add_feedback(f"{w}-{n}", f"user{w}", [(str(n), 3.0)], None)  # a retry
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_rows() == 16 * 25
    assert store.integrity_ok()
    store.close()
