"""Distributed training (issue 15): ratings/s of the replicate tier at world 1, 2 and 4 on this
machine, and the planner's predictions for 1B ratings per tier. Reported, not asserted.

    nice -n 10 .venv/bin/python benchmarks/distributed.py          # ~1-3 min on 2 cores
    nice -n 10 .venv/bin/python benchmarks/distributed.py --quick  # fewer ratings

Throughput: BiasedMF (k = 32) with the exact AdamW path (dense gradients, DDP) and with sparse
SGD gradients, on synthetic ratings, one epoch per run; each rank times its epoch and the
slowest rank counts. World 1 is the one-process loop, the reference of the ratios. Ranks are
forked (their start-up is not timed). On a 2-core machine shared with other work, more ranks
cannot be faster; the numbers show the overhead of the collectives, not a speed-up.

Writes ``benchmarks/results/distributed.json`` and ``distributed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORLDS = (1, 2, 4)


def _data(n: int, n_users: int, n_items: int) -> Any:
    import pandas as pd

    from collabkit.data.interactions import Interactions

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(0, n_users, n), "item": rng.integers(0, n_items, n),
                       "rating": rng.integers(1, 6, n).astype(np.float32)})
    return Interactions.from_dataframe(df, rating_range=(1.0, 5.0), name="synthetic")


def _rank(rank: int, size: int, cfg: dict[str, Any]) -> dict[str, float]:
    from collabkit.distributed.replicate import fit_replicated
    from collabkit.models.biased_mf import BiasedMF

    data = _data(cfg["n"], cfg["users"], cfg["items"])
    sparse = cfg.get("sparse")
    est = BiasedMF(n_factors=32, epochs=1, lr=0.1 if sparse else 1e-2,
                   wd=0.0 if sparse else 0.05, batch_size=cfg["batch_size"], optimizer="adamw",
                   refit_users=False, valid_frac=0.0, fallback=False, random_state=0,
                   device="cpu")
    model = fit_replicated(est, data, sparse=sparse)
    return {"seconds": float(model.history_[0]["seconds"])}


def throughput(n: int, batch_size: int) -> list[dict[str, Any]]:
    from collabkit.distributed.group import spawn

    rows = []
    for sparse in (None, "sgd"):
        cfg = {"n": n, "users": 20_000, "items": 5_000, "batch_size": batch_size,
               "sparse": sparse}
        for w in WORLDS:
            load = os.getloadavg()[0]
            if w == 1:
                secs = _rank(0, 1, cfg)["seconds"]
            else:
                out = spawn(_rank, w, cfg, timeout_s=600, start_method="fork")
                secs = max(r["seconds"] for r in out)
            rows.append({"gradients": "sparse SGD" if sparse else "dense AdamW", "world": w,
                         "ratings": n, "batch_size": batch_size, "epoch_seconds": secs,
                         "ratings_per_s": n / secs, "load_average": load})
            print(f"[distributed] {rows[-1]}", file=sys.stderr, flush=True)
        ref = next(r for r in rows if r["world"] == 1 and r["gradients"] == rows[-1]["gradients"])
        for r in rows:
            if r["gradients"] == ref["gradients"]:
                r["vs_world_1"] = r["ratings_per_s"] / ref["ratings_per_s"]
    return rows


def predictions() -> list[dict[str, Any]]:
    """The planner at 1B ratings, 10^8 users, 10^7 items, k = 64, for 1 and 8 ranks."""
    from collabkit.distributed import cost

    out = []
    for world in (1, 8):
        p = cost.Problem(10**9, 10**8, 10**7, 64, world=world, batch_size=8192 * world)
        for e in cost.estimates(p):
            if (e.tier == "one-device") != (world == 1):
                continue
            out.append({**e.to_dict(), "world": world, "batch_size": p.batch_size})
    return out


def run(quick: bool = False) -> dict[str, Any]:
    n = 100_000 if quick else 400_000
    t0 = time.perf_counter()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cores": os.cpu_count(), "load_average_start": os.getloadavg()[0],
              "throughput": throughput(n, 4096), "planner_1b": predictions()}
    result["load_average_end"] = os.getloadavg()[0]
    result["seconds"] = time.perf_counter() - t0
    return result


def markdown(res: dict[str, Any]) -> str:
    from collabkit.distributed.cost import human

    lines = [f"Run {res['date']} on {res['cores']} cores in {res['seconds']:.0f} s, load "
             f"average {res['load_average_start']:.1f} at the start and "
             f"{res['load_average_end']:.1f} at the end (the machine is shared: on 2 cores more "
             "ranks only add the collectives' cost).", "",
             "| gradients | world | ratings/s | vs world 1 | epoch (s) | load |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in res["throughput"]:
        lines.append(f"| {r['gradients']} | {r['world']} | {r['ratings_per_s']:,.0f} | "
                     f"{r.get('vs_world_1', 1.0):.2f}x | {r['epoch_seconds']:.2f} | "
                     f"{r['load_average']:.1f} |")
    lines += ["", "Planner at 1B ratings (10^8 users, 10^7 items, k = 64, float32; arithmetic, "
              "not measured; global batch 8,192 per rank):", "",
              "| tier | ranks | memory per rank | sent per rank per step | on the wire per rank "
              "per epoch |", "|---|---:|---:|---:|---:|"]
    for e in res["planner_1b"]:
        lines.append(f"| {e['tier']} | {e['world']} | {human(e['memory_per_rank'])} | "
                     f"{human(e['wire_per_step'])} | {human(e['wire_per_epoch'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    print(main_write(run(args.quick), args.out_dir))
    return 0


def main_write(res: dict[str, Any], out_dir: Path) -> str:
    """Write ``distributed.json`` and ``distributed.md`` into ``out_dir``; return the text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "distributed.json").write_text(json.dumps(res, indent=1))
    md = "# Distributed training (issue 15)\n\n" + markdown(res) + "\n"
    (out_dir / "distributed.md").write_text(md)
    return md


if __name__ == "__main__":
    sys.exit(main())
