"""The kill -9 check of the feedback store, shared by ``tests/serve`` and ``benchmarks``.

One round: start a real ``collabkit serve`` subprocess on 127.0.0.1 (a free port), let
``writers`` threads post feedback as fast as they can, SIGKILL the server at a random moment,
restart it, and check

* every acknowledged write (201 or 200) is in the database (nothing acked is lost),
* nothing is in the database that was never sent,
* retrying every sent write with its request id adds no row (acked ones answer 200
  ``duplicate``; unacked ones are stored at most once),
* ``PRAGMA integrity_check`` is ``ok``, and
* the restarted server answered ``/v1/health`` within ``restart_limit`` seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RoundResult", "ServerProcess", "crash_round", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m collabkit serve MODEL`` on 127.0.0.1, logging to ``log``."""

    def __init__(self, model: str | Path, db: str | Path, app_key: str, log: str | Path,
                 port: int | None = None, workers: int = 1,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.model, self.db, self.app_key, self.log = str(model), str(db), app_key, Path(log)
        self.port = port or free_port()
        self.workers = workers
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait for ``/v1/health``; seconds until it answered."""
        env = {**os.environ, "COLLABKIT_API_KEY": self.app_key}
        t0 = time.monotonic()
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collabkit", "serve", self.model, "--db", self.db,
                 "--port", str(self.port), "--workers", str(self.workers),
                 "--log-level", "warning", *self.extra_args],
                stdout=logf, stderr=subprocess.STDOUT, env=env)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                status, _ = self.request("GET", "/v1/health", timeout=0.5)
                if status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not answer within {timeout} s; see {self.log}")

    def request(self, method: str, path: str, body: object = None,
                timeout: float = 10.0) -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={
                "Authorization": f"Bearer {self.app_key}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, (json.loads(payload) if payload else {})
        except http.client.HTTPException as e:  # killed mid-response: not an answer
            raise ConnectionError(f"{method} {path}: the server closed mid-response ({e!r})"
                                  ) from e
        finally:
            conn.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class RoundResult:
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    present_after_restart: set[str] = field(default_factory=set)
    rows_after_retry: int = 0
    distinct_after_retry: int = 0
    retry_status: dict[str, int] = field(default_factory=dict)
    integrity: str = ""
    restart_seconds: float = float("nan")
    killed_after: float = 0.0

    @property
    def lost(self) -> set[str]:
        """Acknowledged but not in the database after the restart."""
        return self.acked - self.present_after_restart

    @property
    def phantom(self) -> set[str]:
        """In the database but never sent."""
        return self.present_after_restart - self.sent

    @property
    def bad_retries(self) -> dict[str, int]:
        """Retries answered wrongly: an acked write must come back 200, others 200 or 201."""
        return {r: s for r, s in self.retry_status.items()
                if s not in (200, 201) or (r in self.acked and s != 200)}

    @property
    def ok(self) -> bool:
        return (not self.lost and not self.phantom and not self.bad_retries
                and self.rows_after_retry == self.distinct_after_retry == len(self.sent)
                and self.integrity == "ok")


def _request_ids(db: str | Path, prefix: str) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT request_id FROM requests WHERE request_id LIKE ?",
                            (prefix + "%",)).fetchall()
        return {r[0] for r in rows}
    finally:
        conn.close()


def crash_round(server: ServerProcess, items: list[int | str], *, tag: str,
                writers: int = 32, kill_between: tuple[float, float] = (0.5, 2.0),
                seed: int = 0) -> RoundResult:
    """One kill -9 round against ``server`` (already started); it is left running after."""
    rng = random.Random(seed)
    res = RoundResult()
    lock = threading.Lock()
    stop = threading.Event()
    bodies: dict[str, dict[str, object]] = {}

    def writer(w: int) -> None:
        n = 0
        while not stop.is_set():
            rid = f"{tag}-{w}-{n}"
            body: dict[str, object] = {"request_id": rid, "user_id": f"crash-{tag}-{w}",
                    "ratings": [{"item_id": items[(w + n) % len(items)], "rating": 4.0}]}
            with lock:
                res.sent.add(rid)
                bodies[rid] = body
            try:
                status, _ = server.request("POST", "/v1/feedback", body, timeout=10)
            except OSError:
                return  # the server is gone; this write is sent, not acked
            if status in (200, 201):
                with lock:
                    res.acked.add(rid)
            n += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    res.killed_after = rng.uniform(*kill_between)
    time.sleep(res.killed_after)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    res.restart_seconds = server.start()
    res.present_after_restart = _request_ids(server.db, f"{tag}-")
    with ThreadPoolExecutor(8) as pool:  # every sent write again, same request id
        ids = sorted(res.sent)
        for rid, (status, _) in zip(ids, pool.map(
                lambda r: server.request("POST", "/v1/feedback", bodies[r]), ids), strict=True):
            res.retry_status[rid] = status
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=10)
    try:
        res.rows_after_retry = int(conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE request_id LIKE ?", (f"{tag}-%",)).fetchone()[0])
        res.distinct_after_retry = int(conn.execute(
            "SELECT COUNT(DISTINCT request_id) FROM feedback WHERE request_id LIKE ?",
            (f"{tag}-%",)).fetchone()[0])
        res.integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
    return res
