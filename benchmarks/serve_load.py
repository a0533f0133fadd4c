"""Load and kill -9 figures of ``collabkit serve`` (issue 10), loopback only, bounded in time.

    .venv/bin/python benchmarks/serve_load.py                      # 30 s per dataset, 10 kills
    .venv/bin/python benchmarks/serve_load.py --duration 10 --crash-rounds 3

**Load.** For each dataset (the bundled ml-latest-small, and ml-100k from ``$COLLABKIT_DATA``)
a ``BiasedMF()`` is trained once (cached under ``runs/bench-serve/``) and served by a real
``collabkit serve`` subprocess on 127.0.0.1 (one worker). 32 asyncio clients run for
``--duration`` seconds, each on its own HTTP/1.1 keep-alive connection written with asyncio
streams (uvloop when installed): it costs the shared cores far less per request than httpx
did (~2.8 ms, a third of the CPU), while each latency still runs from the first byte sent to
the last byte of the body read, and every exception counts as a transport error. The client's
and the server's CPU per request (``/proc``) are reported, and the client's share. Mix: 80 % ``GET
/v1/users/{id}/recommendations?k=10`` (half for users of the model, half for users that wrote
feedback in this run, so their lists are fold-ins) and 20 % ``POST /v1/feedback`` (1-3 ratings
of popular items, a fresh request id each). Reported: requests/s, p50/p99 latency overall and
per kind, 5xx answers, transport errors. Target on a 2-core box: >= 300 requests/s with p99 <=
200 ms, zero 5xx and zero transport errors. Client and server share the machine's cores.
Each dataset runs twice: with the server's recommendation cache (default size; entries are
keyed by model, user and stored ratings, so reads of users without new feedback repeat) and
with it off (``--cache-size 0``: every list computed), with the hit rate reported.

``--reference-src DIR`` runs the same load, just before, against a server importing
collabkit from ``DIR`` (another checkout's ``src``): a before/after pair in the same window
on a shared machine.

**kill -9.** ``--crash-rounds`` rounds of :func:`collabkit.serve.crashcheck.crash_round`
(32 writer threads, SIGKILL at a random moment in 0.5-2 s, restart, checks); reported per
round with the restart time against the 5 s target.

Writes ``benchmarks/results/serve.json`` and prints a markdown summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / "runs" / "bench-serve"
APP_KEY = "bench-" + uuid.uuid4().hex
CLIENTS = 32


def log(msg: str) -> None:
    print(f"[serve-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def model_for(name: str) -> Path | None:
    """A BiasedMF() folder for dataset ``name``, trained once; None when the data is absent."""
    import collabkit
    from collabkit.errors import DatasetNotAvailableError

    folder = CACHE / name
    if (folder / "model.json").is_file():
        return folder
    try:
        data = collabkit.load_dataset(name, download=False, progress=False)
    except DatasetNotAvailableError as e:
        log(f"{name}: skipped ({e})")
        return None
    log(f"{name}: training BiasedMF() on {len(data)} ratings (cached in {folder})")
    collabkit.BiasedMF(random_state=0).fit(data).save(str(folder))
    return folder


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q) * 1000) if xs else float("nan")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; else None)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Conn:
    """One HTTP/1.1 keep-alive connection on asyncio streams: the lean load client.

    ``request`` sends prepared bytes and returns ``(status, body)`` once the whole body is
    read (``Content-Length`` or chunked); any failure closes the connection and raises, and
    the next request reconnects (its latency includes the new connection).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        try:
            if self.writer is None or self.reader is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, chunked, close = -1, False, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    close = b"close" in value.lower()
            if chunked:
                parts = []
                while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    parts.append(await self.reader.readexactly(size + 2))
                await self.reader.readuntil(b"\r\n")
                body = b"".join(p[:-2] for p in parts)
            elif length >= 0:
                body = await self.reader.readexactly(length)
            else:
                body, close = await self.reader.read(), True
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


#: how the client is described in the results
CLIENT = ("raw HTTP/1.1 keep-alive on asyncio streams (uvloop when installed), one "
          "connection per client")


async def _load(port: int, users: list[str], items: list[int], duration: float,
                seed: int) -> dict[str, Any]:
    """The 32-client mix; latency is from the first byte sent to the last byte of the body
    read, for every request; every exception is a transport error (and a reconnect)."""
    rng = random.Random(seed)
    lat: dict[str, list[float]] = {"read": [], "write": []}
    status: dict[int, int] = {}
    errors: dict[str, int] = {}
    writers: list[str] = []
    auth = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {APP_KEY}\r\n"
    deadline = time.perf_counter() + duration

    async def one_client(c: int) -> None:
        conn = _Conn(port)
        while time.perf_counter() < deadline:
            if rng.random() < 0.8:
                kind = "read"
                user = rng.choice(writers) if writers and rng.random() < 0.5 \
                    else rng.choice(users)
                raw = (f"GET /v1/users/{quote(user, safe='')}/recommendations?k=10 HTTP/1.1"
                       f"\r\n{auth}\r\n").encode()
            else:
                kind = "write"
                user = f"load-{c}-{rng.randrange(8)}"
                body = json.dumps({
                    "request_id": uuid.uuid4().hex, "user_id": user,
                    "ratings": [{"item_id": i, "rating": float(rng.randint(1, 5))}
                                for i in rng.sample(items, rng.randint(1, 3))]}).encode()
                raw = (f"POST /v1/feedback HTTP/1.1\r\n{auth}Content-Type: application/json"
                       f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(30):
                    code, _ = await conn.request(raw)
            except Exception as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                continue
            lat[kind].append(time.perf_counter() - t0)
            status[code] = status.get(code, 0) + 1
            if kind == "write" and code == 201 and user not in writers:
                writers.append(user)
        conn.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in range(CLIENTS)))
    wall = time.perf_counter() - t_start
    both = lat["read"] + lat["write"]
    return {
        "seconds": wall, "requests": len(both), "requests_per_s": len(both) / wall,
        "p50_ms": _pct(both, 50), "p99_ms": _pct(both, 99),
        "read": {"n": len(lat["read"]), "p50_ms": _pct(lat["read"], 50),
                 "p99_ms": _pct(lat["read"], 99)},
        "write": {"n": len(lat["write"]), "p50_ms": _pct(lat["write"], 50),
                  "p99_ms": _pct(lat["write"], 99)},
        "status": {str(k): v for k, v in sorted(status.items())},
        "server_errors_5xx": sum(v for k, v in status.items() if k >= 500),
        "transport_errors": errors, "feedback_users": len(writers),
    }


def _run_load(port: int, users: list[str], items: list[int], duration: float,
              seed: int) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # plain asyncio
        return asyncio.run(_load(port, users, items, duration, seed))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_load(port, users, items, duration, seed))


def _cache_hits(port: int) -> dict[str, float]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("collabkit_recommendation_cache_total{"):
            out[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    return out


def load_run(name: str, model: Path, duration: float, workdir: Path,
             cache_size: int = 4096, server_src: Path | None = None) -> dict[str, Any]:
    """One load run against a fresh server; ``server_src`` puts another checkout's ``src``
    first on the server's ``PYTHONPATH`` (a reference run, same client, same window)."""
    import collabkit
    from collabkit.recommend.onboarding import item_counts
    from collabkit.serve.crashcheck import ServerProcess

    m = collabkit.load_model(model)
    users = [str(u) for u in m.user_vocab_.all_ids.tolist()]
    popular = m.item_vocab_.ids(np.argsort(-item_counts(m))[:500]).tolist()
    tag = "" if server_src is None else "-reference"
    server = ServerProcess(model, workdir / f"{name}-{cache_size}{tag}.sqlite3", APP_KEY,
                           workdir / f"{name}{tag}.log",
                           extra_args=("--cache-size", str(cache_size)))
    saved = os.environ.get("PYTHONPATH")
    if server_src is not None:  # the reference server: other collabkit sources first
        os.environ["PYTHONPATH"] = str(server_src)
    try:
        server.start()
    finally:
        if server_src is not None:
            os.environ.pop("PYTHONPATH")
            if saved is not None:
                os.environ["PYTHONPATH"] = saved
    assert server.proc is not None
    load0 = os.getloadavg()[0]
    try:
        log(f"{name}: {CLIENTS} clients for {duration:.0f} s, cache size {cache_size}"
            + ("" if server_src is None else f", server code from {server_src}"))
        cpu0, server0 = time.process_time(), _cpu_seconds(server.proc.pid)
        res = _run_load(server.port, users, popular, duration, seed=0)
        client_cpu = time.process_time() - cpu0
        server1 = _cpu_seconds(server.proc.pid)
        res["cache"] = _cache_hits(server.port)
    finally:
        server.stop()
    server_cpu = None if server0 is None or server1 is None else server1 - server0
    n = max(res["requests"], 1)
    res.update(client=CLIENT, client_cpu_ms_per_request=1000 * client_cpu / n,
               server_cpu_ms_per_request=None if server_cpu is None else 1000 * server_cpu / n,
               client_cpu_share=None if not server_cpu else client_cpu / (client_cpu + server_cpu),
               server_code="this checkout" if server_src is None else str(server_src))
    hits, misses = res["cache"].get("hit", 0.0), res["cache"].get("miss", 0.0)
    res.update(dataset=name, cache_size=cache_size,
               cache_hit_rate=hits / (hits + misses) if hits + misses else 0.0,
               n_users=len(m.user_vocab_), n_items=len(m.item_vocab_),
               load_average_before=load0, load_average_after=os.getloadavg()[0])
    res["meets_target"] = (res["requests_per_s"] >= 300 and res["p99_ms"] <= 200
                           and res["server_errors_5xx"] == 0 and not res["transport_errors"])
    return res


def crash_run(model: Path, rounds: int, workdir: Path) -> list[dict[str, Any]]:
    import collabkit
    from collabkit.recommend.onboarding import item_counts
    from collabkit.serve.crashcheck import ServerProcess, crash_round

    m = collabkit.load_model(model)
    items = m.item_vocab_.ids(np.argsort(-item_counts(m))[:50]).tolist()
    server = ServerProcess(model, workdir / "crash.sqlite3", APP_KEY, workdir / "crash.log")
    server.start()
    out = []
    try:
        for r in range(rounds):
            res = crash_round(server, items, tag=f"r{r}", writers=CLIENTS,
                              kill_between=(0.5, 2.0), seed=r)
            row = {"round": r, "killed_after_s": res.killed_after, "sent": len(res.sent),
                   "acked": len(res.acked), "lost": len(res.lost),
                   "phantom": len(res.phantom), "bad_retries": len(res.bad_retries),
                   "rows_after_retry": res.rows_after_retry, "integrity": res.integrity,
                   "restart_s": res.restart_seconds, "ok": res.ok,
                   "restart_within_5s": res.restart_seconds <= 5.0,
                   "load_average": os.getloadavg()[0]}
            log(f"crash round {r}: {row}")
            out.append(row)
    finally:
        server.stop()
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Client: {CLIENT}, {CLIENTS} clients, on the same cores as the server.", "",
             "| dataset | server code | cache (hit rate) | req/s | p50 ms | p99 ms | read p50/p99 "
             "| write p50/p99 | 5xx | transport errors | server / client CPU ms per request "
             "(client share) | load avg | target met |", "|" + "---|" * 13]
    for r in result["load"]:
        cache = f"{r['cache_size']} ({r['cache_hit_rate']:.0%})" if r["cache_size"] else "off"
        cpu = (f"{r['server_cpu_ms_per_request']:.2f} / {r['client_cpu_ms_per_request']:.2f} "
               f"({r['client_cpu_share']:.0%})" if r.get("client_cpu_share") is not None
               else "n/a")
        lines.append(
            f"| {r['dataset']} | {r.get('server_code', 'this checkout')} | {cache} | "
            f"{r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['read']['p50_ms']:.1f} / {r['read']['p99_ms']:.1f} | "
            f"{r['write']['p50_ms']:.1f} / {r['write']['p99_ms']:.1f} | "
            f"{r['server_errors_5xx']} | {sum(r['transport_errors'].values())} | {cpu} | "
            f"{r['load_average_before']:.1f}-{r['load_average_after']:.1f} | "
            f"{'yes' if r['meets_target'] else 'no'} |")
    crash = result["crash"]
    if crash:
        ok = sum(c["ok"] for c in crash)
        fast = sum(c["restart_within_5s"] for c in crash)
        restarts = [c["restart_s"] for c in crash]
        lines += ["", f"kill -9: {ok}/{len(crash)} rounds passed every check "
                  f"({sum(c['acked'] for c in crash)} acked writes, "
                  f"{sum(c['lost'] for c in crash)} lost); restart answered in "
                  f"{min(restarts):.1f}-{max(restarts):.1f} s, within 5 s in "
                  f"{fast}/{len(crash)} rounds."]
    return "\n".join(lines)


def run(duration: float = 30.0, crash_rounds: int = 10,
        datasets: tuple[str, ...] = ("ml-latest-small", "ml-100k"),
        no_cache_too: bool = True, reference_src: Path | None = None) -> dict[str, Any]:
    """Load per dataset (with the recommendation cache, and without it when
    ``no_cache_too``; each preceded by the same run against ``reference_src`` when given),
    then the kill -9 rounds on the first dataset's model."""
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        work = Path(tmp)
        loads = []
        models = {name: model_for(name) for name in datasets}
        for name, model in models.items():
            if model is None:
                continue
            for size in (4096, 0) if no_cache_too else (4096,):
                if reference_src is not None:
                    loads.append(load_run(name, model, duration, work, size, reference_src))
                loads.append(load_run(name, model, duration, work, size))
        first = next((m for m in models.values() if m is not None), None)
        crash = crash_run(first, crash_rounds, work) if first and crash_rounds else []
    return {"load": loads, "crash": crash, "duration_s": duration, "clients": CLIENTS,
            "client": CLIENT,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cores": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load per dataset")
    ap.add_argument("--crash-rounds", type=int, default=10)
    ap.add_argument("--datasets", nargs="+", default=["ml-latest-small", "ml-100k"])
    ap.add_argument("--cache-only", action="store_true",
                    help="skip the runs with the recommendation cache off")
    ap.add_argument("--reference-src", type=Path, default=None,
                    help="also load a server running another checkout's src folder (e.g. "
                         "`git archive main src | tar -x -C /tmp/ref`, then /tmp/ref/src), "
                         "just before each run: a before/after pair in the same window")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "serve.json")
    args = ap.parse_args(argv)
    result = run(args.duration, args.crash_rounds, tuple(args.datasets),
                 no_cache_too=not args.cache_only, reference_src=args.reference_src)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    bad = any(r["server_errors_5xx"] or r["transport_errors"] for r in result["load"]) or \
        not all(c["ok"] for c in result["crash"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
