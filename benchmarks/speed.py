"""Speed of one BiasedMF epoch on 1M synthetic ratings at k = 64, and where the time goes.

    .venv/bin/python benchmarks/speed.py                 # table + profile, JSON on stdout end
    .venv/bin/python benchmarks/speed.py --compile       # also time a torch.compile'd step
    .venv/bin/python benchmarks/speed.py --out speed.json

The data are :func:`collabkit.testing.scale.ml25m_like` (1M ratings, 6,502 users, 2,362
items). The model is ``BiasedMF(n_factors=64, valid_frac=0)`` with its default solver (the
packed hand-written gradient + Adam of :mod:`collabkit.train.sparse`; the auto batch gives
16,384 rows per step at 1M ratings). Each configuration trains 3 epochs; the epoch time is the
median of the per-epoch wall clock (``EpochStats.seconds``), next to the median process CPU
time per epoch, which is less sensitive to other work on a shared machine. The load average is
recorded before and after.

``--compile`` also measures an alternative not in the library: the same gradient written for
``torch.compile`` (one fused C++ kernel for gather, dot, sigmoid, scaling and scatter) plus
the same fused Adam step; it reports the compile time and the epoch time after compiling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

from collabkit.models.dot import DotProductBias
from collabkit.models.mf import BiasedMF
from collabkit.testing.scale import ml25m_like
from collabkit.train.loop import intra_op_threads
from collabkit.train.sparse import (
    _Adam,
    auto_batch_size,
    fit_biased_mf,
    mf_batch_grad,
    one_cycle_lr,
    pack_tables,
    row_penalty_weights,
)

TARGET_SECONDS = 0.15


def _load() -> float:
    return os.getloadavg()[0]


def _epochs_of(history: list[Any]) -> list[float]:
    return [h["seconds"] if isinstance(h, dict) else h.seconds for h in history]


class _CpuClock:
    """Callback recording the process CPU time at the end of every epoch."""

    def __init__(self) -> None:
        self.marks = [time.process_time()]

    def __call__(self, stats: Any) -> None:
        self.marks.append(time.process_time())

    def median(self) -> float:
        return statistics.median(np.diff(self.marks[1:] if len(self.marks) > 2 else self.marks))


def time_estimator(data: Any, k: int, epochs: int) -> dict[str, Any]:
    """BiasedMF(n_factors=k) as a user runs it (one intra-op thread, the solver's default)."""
    t0, clock = time.perf_counter(), _CpuClock()
    m = BiasedMF(n_factors=k, epochs=epochs, valid_frac=0.0, random_state=0, device="cpu",
                 callback=clock).fit(data)
    ep = _epochs_of(m.history_)
    return {"config": f"BiasedMF(n_factors={k}) default, 1 thread", "threads": 1,
            "batch_size": m.batch_size_, "epoch_seconds": ep,
            "epoch_median": statistics.median(ep), "cpu_per_epoch": clock.median(),
            "fit_wall": time.perf_counter() - t0}


def time_solver(data: Any, k: int, epochs: int, threads: int) -> dict[str, Any]:
    """The same solver with ``threads`` intra-op threads."""
    n = len(data)
    bs, lr = auto_batch_size(n, 1024, 1e-2)
    g = torch.Generator().manual_seed(0)
    m = DotProductBias(data.n_users, data.n_items, k, (0.0, 5.5))
    u, i = torch.as_tensor(data.users.copy()), torch.as_tensor(data.items.copy())
    y = torch.as_tensor(data.ratings.copy())
    clock = _CpuClock()
    res = fit_biased_mf(m, u, i, y, epochs=epochs, lr_max=lr, wd=0.1, batch_size=bs,
                        generator=g, num_threads=threads, callback=clock)
    ep = _epochs_of(res.history)
    return {"config": f"same solver, {threads} threads", "threads": threads, "batch_size": bs,
            "epoch_seconds": ep, "epoch_median": statistics.median(ep),
            "cpu_per_epoch": clock.median(), "fit_wall": res.fit_seconds}


def profile_epoch(data: Any, k: int, top: int = 10) -> list[dict[str, Any]]:
    """torch.profiler over one epoch of the default solver: the top ops by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    n = len(data)
    bs, lr = auto_batch_size(n, 1024, 1e-2)
    m = DotProductBias(data.n_users, data.n_items, k, (0.0, 5.5))
    u, i = torch.as_tensor(data.users.copy()), torch.as_tensor(data.items.copy())
    y = torch.as_tensor(data.ratings.copy())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit_biased_mf(m, u, i, y, epochs=1, lr_max=lr, wd=0.1, batch_size=bs,
                      generator=torch.Generator().manual_seed(0))
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1.0
    return [{"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1e3,
             "share": e.self_cpu_time_total / total} for e in rows[:top]]


def _compiled_grad(W: torch.Tensor, G: torch.Tensor, rows: torch.Tensor, y: torch.Tensor,
                   coef: torch.Tensor, n_users: int) -> torch.Tensor:
    """The batch gradient of mf_batch_grad, written so inductor fuses it into one kernel."""
    B, K = rows.shape[0], W.shape[1]
    E = W[rows]
    x = (E[:, 0] * E[:, 1]).sum(-1)
    s = torch.sigmoid(x)
    err = s * 5.5 - y
    gx = err * s * (1 - s) * (11.0 / B)
    S = gx[:, None, None] * E.flip(1) + (coef[rows] * (2.0 / B))[:, :, None] * E
    G.zero_()
    G.index_put_((rows.reshape(-1),), S.reshape(-1, K), accumulate=True)
    G[:n_users, K - 1] = 0.0
    G[n_users:, K - 2] = 0.0
    return (err * err).sum()


def time_compiled(data: Any, k: int, epochs: int) -> dict[str, Any]:
    """Compile time and epoch time of a torch.compile'd gradient + the fused Adam step."""
    n, nu = len(data), data.n_users
    bs, lr = auto_batch_size(n, 1024, 1e-2)
    m = DotProductBias(nu, data.n_items, k, (0.0, 5.5))
    W = pack_tables(m)
    G = torch.zeros_like(W)
    pairs = torch.stack([torch.as_tensor(data.users.copy()),
                         torch.as_tensor(data.items.copy()) + nu], 1)
    y = torch.as_tensor(data.ratings.copy())
    coef = row_penalty_weights(pairs, nu, data.n_items, 0.5).mul_(0.1)
    adam = _Adam(W, (0.9, 0.99), 1e-8)
    fn = torch.compile(_compiled_grad, dynamic=False)  # one shape: the last partial batch
    # is dropped below (dynamic shapes measured 0.48 s CPU per epoch instead of 0.26)
    g = torch.Generator().manual_seed(0)
    with intra_op_threads(1), torch.no_grad():
        t0 = time.perf_counter()
        fn(W, G, pairs[:bs], y[:bs], coef, nu)
        compile_s = time.perf_counter() - t0
        # check against the eager gradient on the same batch
        G2 = torch.empty_like(G)
        mf_batch_grad(W, pairs[:bs], y[:bs], G2, n_users=nu, coef=coef,
                      y_range=(0.0, 5.5), global_bias=0.0)
        max_diff = float((G - G2).abs().max())
        total, step, ep, cpu = epochs * (n // bs), 0, [], []
        for _ in range(epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            perm = torch.randperm(n, generator=g)
            for s in range(0, n - bs + 1, bs):
                idx = perm[s : s + bs]
                fn(W, G, pairs.index_select(0, idx), y.index_select(0, idx), coef, nu)
                adam.step(G, one_cycle_lr(step, total, lr))
                step += 1
            ep.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"config": "torch.compile'd gradient + fused Adam, 1 thread (drop last batch)",
            "threads": 1,
            "batch_size": bs, "epoch_seconds": ep, "epoch_median": statistics.median(ep),
            "cpu_per_epoch": statistics.median(cpu), "compile_seconds": compile_s,
            "max_abs_diff_vs_eager": max_diff}


def run(n: int = 1_000_000, k: int = 64, epochs: int = 3, *, two_threads: bool = True,
        compile_step: bool = False, profile: bool = True) -> dict[str, Any]:
    """Every measurement as one JSON-ready dict."""
    load0 = _load()
    t0 = time.perf_counter()
    data = ml25m_like(n, seed=0).data
    gen_s = time.perf_counter() - t0
    rows = [time_estimator(data, k, epochs)]
    if two_threads:
        rows.append(time_solver(data, k, epochs, 2))
    if compile_step:
        try:
            rows.append(time_compiled(data, k, epochs))
        except Exception as exc:  # no C++ compiler, unsupported torch: report, do not fail
            rows.append({"config": "torch.compile'd gradient", "error": repr(exc)[:300]})
    prof = profile_epoch(data, k) if profile else []
    return {"n_ratings": len(data), "n_users": data.n_users, "n_items": data.n_items,
            "n_factors": k, "epochs": epochs, "generate_seconds": gen_s,
            "target_seconds": TARGET_SECONDS, "rows": rows, "profile": prof,
            "load_before": load0, "load_after": _load(), "torch": torch.__version__}


def markdown(res: dict[str, Any]) -> str:
    """The speed table and the profile as markdown."""
    lines = [f"One epoch of BiasedMF over {res['n_ratings']:,} synthetic ratings "
             f"({res['n_users']:,} users x {res['n_items']:,} items), k = {res['n_factors']}; "
             f"median of {res['epochs']} epochs; load average {res['load_before']:.1f} before, "
             f"{res['load_after']:.1f} after. Target: {res['target_seconds']} s.", "",
             "| configuration | batch | epoch s (wall, median) | CPU s / epoch | note |",
             "|---|---:|---:|---:|---|"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['config']} | | | | failed: {r['error']} |")
            continue
        note = ""
        if "compile_seconds" in r:
            note = (f"compile {r['compile_seconds']:.1f} s; max |diff| vs eager "
                    f"{r['max_abs_diff_vs_eager']:.1e}")
        lines.append(f"| {r['config']} | {r['batch_size']:,} | {r['epoch_median']:.3f} | "
                     f"{r['cpu_per_epoch']:.3f} | {note} |")
    if res.get("profile"):
        lines += ["", "Where one epoch's time goes (torch.profiler, self CPU time):", "",
                  "| op | calls | ms | share |", "|---|---:|---:|---:|"]
        for p in res["profile"]:
            lines.append(f"| `{p['op']}` | {p['calls']} | {p['self_ms']:.1f} | "
                         f"{100 * p['share']:.0f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time a torch.compile'd step")
    ap.add_argument("--no-two-threads", action="store_true")
    ap.add_argument("--out", default=None, help="write the JSON here")
    args = ap.parse_args(argv)
    res = run(args.n, args.k, args.epochs, two_threads=not args.no_two_threads,
              compile_step=args.compile)
    print(markdown(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
