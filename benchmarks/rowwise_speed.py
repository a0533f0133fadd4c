"""Ratings per second of the row-wise sharded tier at world 1, 2 and 4 (issue 15, part 2).

    nice -n 10 .venv/bin/python benchmarks/rowwise_speed.py [--ratings 400000] [--epochs 2]

A generated set (skewed item popularity, every user with ratings) is split round-robin over
the ranks, as if each had read an arbitrary part; each rank trains with
:func:`collabkit.distributed.rowwise.fit_rowwise` (one torch thread per rank, gloo). The time
is the slowest rank's wall clock of ``fit_rowwise`` (moving ratings to their user's rank
included), so ratings/s = ratings x epochs / that time. World 1 runs in a spawned process too,
so every world pays the same start-up outside the timed part. Printed as JSON with the load
average before and after, and the speed relative to world 1 of the same run (on a 2-core
machine shared with others, the ratio, not the absolute number, is what compares). Reported,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from collabkit.distributed.group import spawn
from collabkit.distributed.rowwise import RowwiseConfig, fit_rowwise

OUT = Path(__file__).parent / "results" / "rowwise-speed.json"


def _data(n: int, n_users: int, n_items: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    u = np.concatenate([np.arange(n_users), rng.integers(0, n_users, n - n_users)])
    i = np.minimum(rng.zipf(1.3, n) - 1, n_items - 1) % n_items  # popular items are frequent
    r = rng.integers(1, 6, n).astype(np.float32)
    return u, i, r


def rank_program(rank: int, size: int, spec: dict[str, Any]) -> dict[str, Any]:
    u, i, r = _data(spec["ratings"], spec["users"], spec["items"])
    mine = np.arange(rank, len(r), size)
    cfg = RowwiseConfig(n_factors=spec["k"], epochs=spec["epochs"],
                        batch_size=spec["batch_size"], optimizer="adagrad", seed=0)
    if dist.is_initialized():
        dist.barrier()
    t0 = time.perf_counter()
    st = fit_rowwise(u[mine], i[mine], r[mine], spec["users"], spec["items"], cfg)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "train_loss": st.history[-1]["train_loss"],
            "bytes_moved": st.bytes_moved}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=int, default=400_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--worlds", default="1,2,4")
    a = ap.parse_args()
    spec = {"ratings": a.ratings, "users": a.users, "items": a.items, "epochs": a.epochs,
            "k": a.k, "batch_size": a.batch_size}
    load_before = os.getloadavg()
    rows = []
    for size in (int(s) for s in a.worlds.split(",")):
        out = spawn(rank_program, size, spec, timeout_s=600)
        secs = max(o["seconds"] for o in out)
        rows.append({"world": size, "seconds": round(secs, 3),
                     "ratings_per_s": round(a.ratings * a.epochs / secs),
                     "train_loss": out[0]["train_loss"],
                     "bytes_moved_per_rank": [o["bytes_moved"] for o in out]})
    base = rows[0]["ratings_per_s"]
    for row in rows:
        row["vs_world_1"] = round(row["ratings_per_s"] / base, 3)
    result = {"spec": spec, "load_before": load_before, "load_after": os.getloadavg(),
              "cpus": os.cpu_count(), "worlds": rows}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
