"""The served-list log (issue 11): a row per recommended item of every served list, written in
the background, read back by ``read_served``, deleted with the user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from collabkit.serve.servedlog import ServedLog, read_served
from collabkit.serve.store import SQLiteStore


def test_add_queues_and_flush_writes_known_rows(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    SQLiteStore(db).close()
    log = ServedLog(db, interval=3600)  # no background write during the test
    log.add("u1", [10, 20, 30], "personal", "top", "fp")
    log.add("u2", ["a"], "popularity", "mmr", None)
    log.add("u3", [], "bias", "top", None)  # an empty list is not a served list
    assert log.pending() == 4 and read_served(db).empty  # add() did not write
    assert log.flush() == 4 and log.pending() == 0
    got = read_served(db)
    assert got[["user", "item", "rank", "tier", "policy"]].values.tolist() == [
        ["u1", "10", 1, "personal", "top"], ["u1", "20", 2, "personal", "top"],
        ["u1", "30", 3, "personal", "top"], ["u2", "a", 1, "popularity", "mmr"]]
    assert got["list_id"].nunique() == 2 and isinstance(got["time"].dtype, pd.DatetimeTZDtype)
    log.close()


def test_background_thread_writes_without_flush(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    SQLiteStore(db).close()
    log = ServedLog(db, interval=0.05)
    log.add("u", [1, 2], "model", "top", None)
    import time

    deadline = time.monotonic() + 10
    while len(read_served(db)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(read_served(db)) == 2
    log.close()


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    SQLiteStore(db).close()
    log = ServedLog(db, interval=3600)
    log.add("u", [1, 2, 3], "model", "top", None)
    log.close()
    assert len(read_served(db)) == 3


def test_every_served_list_is_logged_and_deleted_with_the_user(client: Any) -> None:
    v = client.post("/v1/visitors").json()
    user, h = v["user_id"], {"Authorization": f"Bearer {v['token']}"}
    first = client.get(f"/v1/users/{user}/recommendations", params={"k": 5}, headers=h).json()
    again = client.get(f"/v1/users/{user}/recommendations", params={"k": 5}, headers=h).json()
    assert first == again  # the second is a cache hit: still a served list
    ctx = client.app.state.ctx
    ctx.served.flush()
    got = read_served(ctx.db_path)
    mine = got[got["user"] == user]
    assert len(mine) == 10 and mine["list_id"].nunique() == 2
    assert set(mine["tier"]) == {"popularity"} and set(mine["policy"]) == {"top"}
    assert mine["rank"].tolist() == [1, 2, 3, 4, 5] * 2
    assert mine["item"].tolist()[:5] == [str(it["item_id"]) for it in first["items"]]
    client.get(f"/v1/users/{user}/recommendations", headers=h)  # queued, not yet written
    assert client.delete(f"/v1/users/{user}", headers=h).status_code == 200
    ctx.served.flush()
    assert (read_served(ctx.db_path)["user"] == user).sum() == 0
