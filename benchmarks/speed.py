"""Speed of one BiasedMF epoch on 1M synthetic ratings at k = 64, and where the time goes.

    .venv/bin/python benchmarks/speed.py                 # table + breakdown, --out for JSON
    .venv/bin/python benchmarks/speed.py --compile       # also time a torch.compile'd step
    .venv/bin/python benchmarks/speed.py --split-threads # also time a 2-thread numba split
    .venv/bin/python benchmarks/speed.py --out speed.json

The data are :func:`collabkit.testing.scale.ml25m_like` (1M ratings, 6,502 users, 2,362
items). The model is ``BiasedMF(n_factors=64, valid_frac=0)`` with its default solver (the
packed hand-written gradient + Adam of :mod:`collabkit.models.biased_mf._packed`, whose batch
gradient is the numba kernel of :mod:`collabkit.models.biased_mf._numba` on CPU; the auto
batch gives 16,384 rows per step at 1M ratings). In the same process, as references: the
same solver with two threads,
and with the torch kernel (``kernel="torch"``, the solver before the numba kernel) on one and
two threads. The numba kernel is loaded (or compiled) once before any timing, and that first
call is reported. The configurations are run in ``--rounds`` interleaved rounds of
``--epochs`` epochs each, so that a burst of load on this shared machine hits them alike; the
epoch time is the median over all their epochs of the per-epoch wall clock
(``EpochStats.seconds``), next to the median process CPU time per epoch, which is less
sensitive to other work. The load average is recorded before and after.

The breakdown reruns the solver's loop with a timer around each part (the shuffle, the batch
gradient, the Adam step) for both kernels. For the torch kernel, ``torch.profiler`` also lists
its top ops; the numba kernel is one call that the profiler cannot see into.

``--compile`` also measures an alternative not in the library: the same gradient written for
``torch.compile`` (one fused C++ kernel for gather, dot, sigmoid, scaling and scatter) plus
the same fused Adam step; it reports the compile time and the epoch time after compiling.
``--split-threads`` measures another: the numba gradient split between two Python threads
(one writes the user rows of the gradient, the other the item rows, each recomputing the dot
products), then the same Adam step.
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

from collabkit.models.biased_mf import _numba
from collabkit.models.biased_mf._estimator import BiasedMF
from collabkit.models.biased_mf._module import DotProductBias
from collabkit.models.biased_mf._packed import (
    auto_batch_size,
    mf_batch_grad,
    pack_tables,
    row_penalty_weights,
)
from collabkit.models.biased_mf._trainer import _NumbaGrad, fit_biased_mf, resolve_kernel
from collabkit.runtime import threads as intra_op_threads
from collabkit.testing.scale import ml25m_like
from collabkit.train.optim import PackedAdam as _Adam
from collabkit.train.schedule import one_cycle_lr

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

    def per_epoch(self) -> list[float]:
        """CPU seconds of every epoch but the first, whose interval includes the fit's set-up."""
        d = list(np.diff(self.marks))
        return d[1:] if len(d) > 1 else d


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(data.users.copy()), torch.as_tensor(data.items.copy()),
            torch.as_tensor(data.ratings.copy()))


def warm_up() -> dict[str, Any]:
    """Load (or compile, on a cold cache) the numba kernel with a tiny fit; its seconds."""
    kernel = resolve_kernel("auto", "cpu")
    g = torch.Generator().manual_seed(0)
    u, i = torch.randint(0, 50, (500,), generator=g), torch.randint(0, 40, (500,), generator=g)
    y = torch.rand(500, generator=g) * 4 + 1
    t0 = time.perf_counter()
    fit_biased_mf(DotProductBias(50, 40, 8, (0.0, 5.5)), u, i, y, epochs=1, lr_max=1e-2,
                  wd=0.1, batch_size=64, generator=g)
    return {"kernel": kernel, "first_fit_seconds": time.perf_counter() - t0,
            "numba": getattr(_numba.numba, "__version__", None)}


def time_estimator(data: Any, k: int, epochs: int) -> dict[str, Any]:
    """BiasedMF(n_factors=k) as a user runs it (its defaults: one thread, kernel "auto")."""
    clock = _CpuClock()
    m = BiasedMF(n_factors=k, epochs=epochs, valid_frac=0.0, random_state=0, device="cpu",
                 callback=clock).fit(data)
    return {"epoch_seconds": _epochs_of(m.history_), "cpu_seconds": clock.per_epoch(),
            "batch_size": m.batch_size_}


def time_solver(data: Any, k: int, epochs: int, threads: int, kernel: str) -> dict[str, Any]:
    """fit_biased_mf with ``threads`` intra-op threads and the given kernel."""
    n = len(data)
    bs, lr = auto_batch_size(n, 1024, 1e-2)
    m = DotProductBias(data.n_users, data.n_items, k, (0.0, 5.5))
    u, i, y = _tensors(data)
    clock = _CpuClock()
    res = fit_biased_mf(m, u, i, y, epochs=epochs, lr_max=lr, wd=0.1, batch_size=bs,
                        generator=torch.Generator().manual_seed(0), num_threads=threads,
                        callback=clock, kernel=kernel)
    return {"epoch_seconds": _epochs_of(res.history), "cpu_seconds": clock.per_epoch(),
            "batch_size": bs}


def configurations(k: int, default_kernel: str) -> list[tuple[str, int, Any]]:
    """(label, threads, runner) of every configuration in the table; the first is the goal's."""
    return [
        (f"BiasedMF(n_factors={k}) default ({default_kernel} kernel), 1 thread", 1,
         lambda d, e: time_estimator(d, k, e)),
        (f"same solver ({default_kernel} kernel), 2 threads", 2,
         lambda d, e: time_solver(d, k, e, 2, "auto")),
        ("torch kernel (reference), 1 thread", 1,
         lambda d, e: time_solver(d, k, e, 1, "torch")),
        ("torch kernel (reference), 2 threads", 2,
         lambda d, e: time_solver(d, k, e, 2, "torch")),
    ]


def time_configurations(data: Any, k: int, epochs: int, rounds: int, default_kernel: str,
                        two_threads: bool = True) -> list[dict[str, Any]]:
    """Every configuration, ``rounds`` times interleaved; medians over all their epochs."""
    confs = [c for c in configurations(k, default_kernel) if two_threads or c[1] == 1]
    got: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for label, threads, runner in confs:
            t0 = time.perf_counter()
            r = runner(data, epochs)
            acc = got.setdefault(label, {"config": label, "threads": threads,
                                         "batch_size": r["batch_size"], "epoch_seconds": [],
                                         "cpu_seconds": [], "fit_wall": []})
            acc["epoch_seconds"] += r["epoch_seconds"]
            acc["cpu_seconds"] += r["cpu_seconds"]
            acc["fit_wall"].append(time.perf_counter() - t0)
    rows = list(got.values())
    for r in rows:
        r["epoch_median"] = statistics.median(r["epoch_seconds"])
        r["epoch_min"] = min(r["epoch_seconds"])
        r["cpu_per_epoch"] = statistics.median(r["cpu_seconds"])
    ref = next((r for r in rows if r["config"].startswith("torch kernel (reference), 1")), None)
    for r in rows:
        r["vs_torch_1"] = r["epoch_median"] / ref["epoch_median"] if ref else None
    return rows


def _solver_state(data: Any, k: int) -> tuple[Any, ...]:
    """What the default solver sets up for ``data`` at k factors: sizes, the auto batch and
    learning rate, the packed table, its gradient, the int32 pairs, ratings, penalty weights
    and the Adam state (``n, n_users, batch, lr, W, G, pairs, y, coef, adam``)."""
    n, nu = len(data), data.n_users
    bs, lr = auto_batch_size(n, 1024, 1e-2)
    m = DotProductBias(nu, data.n_items, k, (0.0, 5.5))
    u, i, y = _tensors(data)
    W = pack_tables(m)
    G = torch.zeros_like(W)
    pairs = torch.stack([u.to(torch.int32), i.to(torch.int32) + nu], 1)
    coef = row_penalty_weights(pairs, nu, data.n_items, 0.5).mul_(0.1)
    return n, nu, bs, lr, W, G, pairs, y, coef, _Adam(W, (0.9, 0.99), 1e-8)


def breakdown(data: Any, k: int, kernel: str, epochs: int = 3) -> dict[str, Any]:
    """The solver's loop (1 thread) with a timer around the shuffle, the gradient and Adam.

    Same arithmetic as :func:`collabkit.models.biased_mf._trainer.fit_biased_mf`; the timers add
    two ``perf_counter`` calls per part and step. Medians over ``epochs`` epochs, in seconds
    (each part's own median, so the parts need not add up to the epoch's).
    """
    n, nu, bs, lr, W, G, pairs, y, coef, adam = _solver_state(data, k)
    ng = _NumbaGrad(W, G, pairs, y, coef, (0.0, 5.5), 0.0, bs) if kernel == "numba" else None
    work = torch.empty(2 * bs * W.shape[1])
    g = torch.Generator().manual_seed(0)
    total, step = epochs * -(-n // bs), 0
    parts: dict[str, list[float]] = {"shuffle": [], "gradient": [], "adam": [], "other": [],
                                     "epoch": []}
    with intra_op_threads(1), torch.no_grad():
        for _ in range(epochs):
            t_ep = time.perf_counter()
            perm = torch.randperm(n, generator=g, dtype=torch.int32)
            perm_np = perm.numpy()
            t_sh = time.perf_counter() - t_ep
            t_gr = t_ad = 0.0
            for s in range(0, n, bs):
                t0 = time.perf_counter()
                if ng is not None:
                    ng(perm_np[s : s + bs])
                else:
                    idx = perm[s : s + bs]
                    mf_batch_grad(W, pairs.index_select(0, idx).long(), y.index_select(0, idx),
                                  G, n_users=nu, coef=coef, y_range=(0.0, 5.5),
                                  global_bias=0.0, work=work)
                t1 = time.perf_counter()
                adam.step(G, one_cycle_lr(step, total, lr))
                t_ad += time.perf_counter() - t1
                t_gr += t1 - t0
                step += 1
            parts["shuffle"].append(t_sh)
            parts["gradient"].append(t_gr)
            parts["adam"].append(t_ad)
            parts["epoch"].append(time.perf_counter() - t_ep)
            parts["other"].append(parts["epoch"][-1] - t_sh - t_gr - t_ad)
    med = {key: statistics.median(v) for key, v in parts.items()}
    return {"kernel": kernel, "steps": -(-n // bs), **med}


def profile_torch_epoch(data: Any, k: int, top: int = 8) -> list[dict[str, Any]]:
    """torch.profiler over one epoch of the torch kernel: the top ops by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    n = len(data)
    bs, lr = auto_batch_size(n, 1024, 1e-2)
    m = DotProductBias(data.n_users, data.n_items, k, (0.0, 5.5))
    u, i, y = _tensors(data)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit_biased_mf(m, u, i, y, epochs=1, lr_max=lr, wd=0.1, batch_size=bs,
                      generator=torch.Generator().manual_seed(0), kernel="torch")
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1.0
    return [{"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1e3,
             "share": e.self_cpu_time_total / total} for e in rows[:top]]


def time_split_threads(data: Any, k: int, epochs: int) -> dict[str, Any]:
    """Not in the library: the numba gradient split between two Python threads.

    Thread A writes the user rows of ``G``, thread B the item rows; each gathers the whole
    batch and computes every dot product (no races, no reduction), then the main thread takes
    the same fused Adam step (1 torch thread).
    """
    from concurrent.futures import ThreadPoolExecutor

    import numba

    @numba.njit(nogil=True, fastmath={"reassoc", "contract"})
    def side_grad(W, G, pairs, y, idx, coef, scale, side, r0, r1, rows, yb):
        K = W.shape[1]
        k = K - 2
        B = idx.shape[0]
        for b in range(B):
            p = idx[b]
            rows[b, 0] = pairs[p, 0]
            rows[b, 1] = pairs[p, 1]
            yb[b] = y[p]
        G[r0:r1] = 0.0
        two_b = np.float32(2.0) / np.float32(B)
        sse = 0.0
        for b in range(B):
            a, o = rows[b, side], rows[b, 1 - side]
            x = np.float32(0.0)
            for j in range(K):
                x += W[a, j] * W[o, j]
            s = np.float32(1.0) / (np.float32(1.0) + np.exp(-x))
            err = s * scale - yb[b]
            g = (s - s * s) * err * scale * two_b
            sse += err * err
            pa = coef[a] * two_b
            for j in range(k):
                G[a, j] += g * W[o, j] + pa * W[a, j]
            G[a, k + side] += g * W[o, k + side] + pa * W[a, k + side]
        return sse

    n, nu, bs, lr, W, G, pairs, y, coef, adam = _solver_state(data, k)
    Wn, Gn, pn, yn, cn = W.numpy(), G.numpy(), pairs.numpy(), y.numpy(), coef.numpy()
    R, sc = W.shape[0], np.float32(5.5)
    bufs = [(np.empty((bs, 2), np.int32), np.empty(bs, np.float32)) for _ in range(2)]
    t0 = time.perf_counter()
    side_grad(Wn, Gn, pn, yn, np.arange(8, dtype=np.int32), cn, sc, 0, 0, nu, *bufs[0])
    compile_s = time.perf_counter() - t0
    # check against the library's gradient on one batch
    idx = np.arange(bs, dtype=np.int32)
    side_grad(Wn, Gn, pn, yn, idx, cn, sc, 0, 0, nu, *bufs[0])
    side_grad(Wn, Gn, pn, yn, idx, cn, sc, 1, nu, R, *bufs[1])
    G2 = torch.empty_like(G)
    mf_batch_grad(W, pairs[:bs].long(), y[:bs], G2, n_users=nu, coef=coef, y_range=(0.0, 5.5),
                  global_bias=0.0)
    max_diff = float((G - G2).abs().max())
    g = torch.Generator().manual_seed(0)
    total, step, ep, cpu = epochs * -(-n // bs), 0, [], []
    with intra_op_threads(1), torch.no_grad(), ThreadPoolExecutor(1) as pool:
        for _ in range(epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            perm = torch.randperm(n, generator=g, dtype=torch.int32).numpy()
            for s in range(0, n, bs):
                idx = perm[s : s + bs]
                fut = pool.submit(side_grad, Wn, Gn, pn, yn, idx, cn, sc, 1, nu, R, *bufs[1])
                side_grad(Wn, Gn, pn, yn, idx, cn, sc, 0, 0, nu, *bufs[0])
                fut.result()
                adam.step(G, one_cycle_lr(step, total, lr))
                step += 1
            ep.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"config": "numba gradient split over 2 Python threads + fused Adam (not in the "
                      "library)", "threads": 2, "batch_size": bs, "epoch_seconds": ep,
            "epoch_median": statistics.median(ep), "cpu_per_epoch": statistics.median(cpu),
            "compile_seconds": compile_s, "max_abs_diff_vs_eager": max_diff}


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


def run(n: int = 1_000_000, k: int = 64, epochs: int = 5, *, rounds: int = 2,
        two_threads: bool = True, compile_step: bool = False, split_threads: bool = False,
        profile: bool = True) -> dict[str, Any]:
    """Every measurement as one JSON-ready dict."""
    load0 = _load()
    warm = warm_up()
    t0 = time.perf_counter()
    data = ml25m_like(n, seed=0).data
    gen_s = time.perf_counter() - t0
    rows = time_configurations(data, k, epochs, rounds, warm["kernel"], two_threads)
    if split_threads:
        try:
            rows.append(time_split_threads(data, k, epochs))
        except Exception as exc:  # no numba: report, do not fail
            rows.append({"config": "numba gradient split over 2 threads", "error": repr(exc)})
    if compile_step:
        try:
            rows.append(time_compiled(data, k, epochs))
        except Exception as exc:  # no C++ compiler, unsupported torch: report, do not fail
            rows.append({"config": "torch.compile'd gradient", "error": repr(exc)[:300]})
    parts = [breakdown(data, k, warm["kernel"])]
    if warm["kernel"] != "torch":
        parts.append(breakdown(data, k, "torch"))
    prof = profile_torch_epoch(data, k) if profile else []
    return {"n_ratings": len(data), "n_users": data.n_users, "n_items": data.n_items,
            "n_factors": k, "epochs": epochs, "rounds": rounds, "generate_seconds": gen_s,
            "target_seconds": TARGET_SECONDS, "warm_up": warm, "rows": rows,
            "breakdown": parts, "profile": prof, "load_before": load0, "load_after": _load(),
            "torch": torch.__version__}


def markdown(res: dict[str, Any]) -> str:
    """The speed table, the breakdown and the torch kernel's profile as markdown."""
    warm = res.get("warm_up", {})
    rounds = res.get("rounds", 1)
    lines = [f"One epoch of BiasedMF over {res['n_ratings']:,} synthetic ratings "
             f"({res['n_users']:,} users x {res['n_items']:,} items), k = {res['n_factors']}, "
             f"all in one process; median over {rounds} interleaved rounds of "
             f"{res['epochs']} epochs; load average {res['load_before']:.1f} before, "
             f"{res['load_after']:.1f} after. Target: {res['target_seconds']} s."]
    if warm:
        lines[0] += (f" Default kernel: {warm['kernel']} (numba {warm.get('numba')}); its first "
                     f"fit in the process, loading the cached kernel (or compiling it on a "
                     f"cold cache), took {warm['first_fit_seconds']:.2f} s before the timings.")
    lines += ["", "| configuration | batch | epoch s (wall, median) | fastest epoch | "
                  "CPU s / epoch | vs torch kernel, 1 thread | note |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['config']} | | | | | | failed: {r['error']} |")
            continue
        note = ""
        if "compile_seconds" in r:
            note = (f"compile {r['compile_seconds']:.1f} s; max |diff| vs eager "
                    f"{r['max_abs_diff_vs_eager']:.1e}")
        fastest = f"{r['epoch_min']:.3f}" if "epoch_min" in r else ""
        ratio = f"{r['vs_torch_1']:.2f}x" if r.get("vs_torch_1") else ""
        lines.append(f"| {r['config']} | {r['batch_size']:,} | {r['epoch_median']:.3f} | "
                     f"{fastest} | {r['cpu_per_epoch']:.3f} | {ratio} | {note} |")
    if res.get("breakdown"):
        b0 = res["breakdown"][0]
        lines += ["", f"Where one epoch's time goes (the solver's loop with timers, 1 thread, "
                      f"{b0['steps']} steps; median of 3 epochs, ms):", "",
                  "| kernel | epoch | shuffle | batch gradient | Adam step | other |",
                  "|---|---:|---:|---:|---:|---:|"]
        for b in res["breakdown"]:
            ep = b["epoch"]
            cells = [f"{1e3 * b[key]:.1f} ({100 * b[key] / ep:.0f} %)"
                     for key in ("shuffle", "gradient", "adam", "other")]
            lines.append(f"| {b['kernel']} | {1e3 * ep:.1f} | " + " | ".join(cells) + " |")
    if res.get("profile"):
        lines += ["", "Inside the torch kernel's epoch (torch.profiler, self CPU time):", "",
                  "| op | calls | ms | share |", "|---|---:|---:|---:|"]
        for p in res["profile"]:
            lines.append(f"| `{p['op']}` | {p['calls']} | {p['self_ms']:.1f} | "
                         f"{100 * p['share']:.0f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=5, help="epochs per configuration and round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    ap.add_argument("--compile", action="store_true", help="also time a torch.compile'd step")
    ap.add_argument("--split-threads", action="store_true",
                    help="also time the numba gradient split over two Python threads")
    ap.add_argument("--no-two-threads", action="store_true")
    ap.add_argument("--out", default=None, help="write the JSON here")
    args = ap.parse_args(argv)
    res = run(args.n, args.k, args.epochs, rounds=args.rounds,
              two_threads=not args.no_two_threads, compile_step=args.compile,
              split_threads=args.split_threads)
    print(markdown(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
