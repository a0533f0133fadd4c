"""Scale check: generate, train, evaluate and recommend at 1M, 5M and 25M ratings.

    .venv/bin/python benchmarks/scale.py                       # 1M, 5M, 25M
    .venv/bin/python benchmarks/scale.py --sizes 1e6 5e6       # a subset
    .venv/bin/python benchmarks/scale.py --out scale.json

Each size runs in its own process, so that its peak resident memory (``ru_maxrss``, the
kernel's high-water mark) is its own. A run:

1. generates ML-25M-shaped ratings (:func:`collabkit.testing.scale.ml25m_like`: 162,541 users,
   59,047 items at 25M, power-law popularity and activity, planted rank-16 signal, half stars);
2. splits them 90/10 at random;
3. fits ``BiasedMF(random_state=0)`` with every default (5 epochs, k = 50, the fast Adam solver
   with its auto batch, a 10 % validation carve of the training rows);
4. scores the test rows (RMSE beside the bias baseline and the "oracle" RMSE of the rounded
   planted truth, the best any model can do);
5. recommends the top 10 unseen items for every user (``model.recommend(all users, n=10)``:
   blocks of 1,024 users x all items, the only dense users x items matrices anywhere).

The time of every phase and the peak RSS after it are recorded; the table also shows peak RSS
per million ratings, which should stay roughly flat (linear growth), and checks 25M against the
4 GB budget.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

BUDGET_GB = 4.0
SIZES = (1_000_000, 5_000_000, 25_000_000)


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def one(n: int, seed: int = 0) -> dict[str, Any]:
    """Every phase at one size, in this process."""
    import torch

    from collabkit.metrics.evaluate import evaluate
    from collabkit.models.biased_mf._estimator import BiasedMF
    from collabkit.testing.scale import ml25m_like

    out: dict[str, Any] = {"n_ratings": n, "load_before": os.getloadavg()[0],
                           "torch_threads": torch.get_num_threads(), "phases": {}}

    def phase(name: str, t0: float) -> None:
        out["phases"][name] = {"seconds": time.perf_counter() - t0, "peak_gb": _peak_gb(),
                               "rss_gb": _rss_gb()}

    t0 = time.perf_counter()
    sd = ml25m_like(n, seed=seed)
    data = sd.data
    out.update(n_users=data.n_users, n_items=data.n_items)
    phase("generate", t0)

    t0 = time.perf_counter()
    test_mask = np.random.default_rng(seed).random(len(data)) < 0.1
    train, test = data.take(np.flatnonzero(~test_mask)), data.take(np.flatnonzero(test_mask))
    oracle_pred = np.clip(np.round(sd.truth(test.users, test.items) * 2) / 2, 0.5, 5.0)
    out["oracle_rmse"] = float(np.sqrt(np.mean((oracle_pred - test.ratings) ** 2)))
    del data, sd, test_mask, oracle_pred
    phase("split", t0)

    t0 = time.perf_counter()
    model = BiasedMF(random_state=seed).fit(train)
    out.update(batch_size=model.batch_size_, lr=model.lr_, epochs=len(model.history_),
               epoch_seconds=[h["seconds"] for h in model.history_])
    n_users = len(model.user_vocab_)
    del train
    phase("fit", t0)

    t0 = time.perf_counter()
    report = evaluate(model, test)
    out.update(rmse=report.rmse, bias_rmse=float(report.table.loc["user+item bias", "rmse"]),
               n_test=report.n)
    del test
    phase("evaluate", t0)

    t0 = time.perf_counter()
    recs = model.recommend(model.user_vocab_.all_ids, n=10)
    out.update(n_recommended_users=int(recs["user"].nunique()), n_recommendations=len(recs),
               all_users_covered=bool(recs["user"].nunique() == n_users))
    del recs
    phase("recommend", t0)
    out["peak_gb"] = _peak_gb()
    out["load_after"] = os.getloadavg()[0]
    return out


def run(sizes: tuple[int, ...] = SIZES, *, timeout: float = 3600) -> list[dict[str, Any]]:
    """Each size in a fresh process (so ``ru_maxrss`` is per size); failures are recorded."""
    rows = []
    for n in sizes:
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", str(n), "--json", tmp.name]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                rows.append({"n_ratings": n, "error": proc.stderr.strip()[-500:],
                             "wall": time.perf_counter() - t0})
                continue
            with open(tmp.name) as f:
                row = json.load(f)
            row["wall"] = time.perf_counter() - t0
            rows.append(row)
        print(f"[scale] {n:,} ratings done in {rows[-1]['wall']:.0f} s", file=sys.stderr,
              flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The scale table."""
    head = ("| ratings | users x items | generate s | fit s (5 epochs) | batch | test RMSE "
            "(bias / oracle) | evaluate s | top-10 all users s | peak RSS GB | GB per 1M |")
    lines = [head, "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n_ratings']:,} | failed: {r['error'][-200:]} |||||||||")
            continue
        p = r["phases"]
        lines.append(
            f"| {r['n_ratings']:,} | {r['n_users']:,} x {r['n_items']:,} | "
            f"{p['generate']['seconds']:.1f} | {p['fit']['seconds']:.1f} | {r['batch_size']:,} | "
            f"{r['rmse']:.4f} ({r['bias_rmse']:.4f} / {r['oracle_rmse']:.4f}) | "
            f"{p['evaluate']['seconds']:.1f} | {p['recommend']['seconds']:.1f} | "
            f"{r['peak_gb']:.2f} | {r['peak_gb'] / (r['n_ratings'] / 1e6):.3f} |")
    ok = [r for r in rows if "error" not in r]
    if ok:
        big = max(ok, key=lambda r: r["n_ratings"])
        verdict = "within" if big["peak_gb"] <= BUDGET_GB else "OVER"
        lines += ["", f"Peak RSS at {big['n_ratings']:,} ratings: {big['peak_gb']:.2f} GB, "
                      f"{verdict} the {BUDGET_GB:g} GB budget. Phase peaks (GB): " + "; ".join(
                          f"{r['n_ratings'] / 1e6:g}M: " + ", ".join(
                              f"{k} {v['peak_gb']:.2f}" for k, v in r["phases"].items())
                          for r in ok) + ". Load average before/after: " + ", ".join(
                          f"{r['load_before']:.1f}/{r['load_after']:.1f}" for r in ok) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=list(SIZES))
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="write all rows as JSON here")
    args = ap.parse_args(argv)
    if args.one is not None:
        res = one(int(args.one))
        with open(args.json, "w") as f:
            json.dump(res, f)
        return 0
    rows = run(tuple(int(s) for s in args.sizes))
    print(markdown(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
