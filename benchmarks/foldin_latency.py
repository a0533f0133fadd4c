"""Fold-in as a caller sees it: one new user at a time, and whether trained users come back.

    .venv/bin/python benchmarks/foldin_latency.py            # ml-latest-small (bundled)

1. Latency: BiasedMF (defaults, random_state=0) on ml-latest-small; for 200 users, their
   ratings are folded in one user at a time (``model.fold_in``) and turned into a top 10
   (``model.recommend_new_user``), with torch's default intra-op threads and with one
   thread. Prints the median, 90th percentile and maximum wall clock per call.
2. Exactness: the same users' training ratings folded back in, compared with their trained
   rows (largest absolute difference of vector and bias), for the default ``valid_frac=0.1``
   and for ``valid_frac=0``. The user pass that ends training solves from the training rows
   only, so with a validation carve the user's full ratings give a different row.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

import collabkit

N_USERS = 200


def _ratings_of(data: Any, dense_user: int) -> dict[Any, float]:
    rows = data.users == dense_user
    return dict(zip(data.item_vocab.ids(data.items[rows]).tolist(),
                    data.ratings[rows].tolist(), strict=True))


def _quantiles(ms: list[float]) -> str:
    ms = sorted(ms)
    return (f"median {statistics.median(ms):.2f} ms, p90 {ms[int(0.9 * len(ms))]:.2f} ms, "
            f"max {ms[-1]:.2f} ms")


def latency(model: Any, users: list[dict[Any, float]]) -> dict[str, str]:
    out = {}
    default = torch.get_num_threads()
    for threads in (default, 1):
        torch.set_num_threads(threads)
        model.fold_in(users[0])  # warm-up
        for name, call in (("fold_in", lambda r: model.fold_in(r)),
                           ("recommend_new_user", lambda r: model.recommend_new_user(r, n=10))):
            ms = []
            for r in users:
                t0 = time.perf_counter()
                call(r)
                ms.append(1e3 * (time.perf_counter() - t0))
            out[f"{name}, {threads} thread(s)"] = _quantiles(ms)
    torch.set_num_threads(default)
    return out


def exactness(data: Any, valid_frac: float) -> float:
    model = collabkit.BiasedMF(valid_frac=valid_frac, random_state=0).fit(data)
    m = model.module_
    worst = 0.0
    for u in range(N_USERS):
        fu = model.fold_in(_ratings_of(data, u))
        uid = model.user_vocab_.index(data.user_vocab.ids(np.array([u])))[0]
        row = m.user_factors.weight[uid].detach().numpy()
        bias = float(m.user_bias.weight[uid, 0].detach())
        worst = max(worst, float(np.abs(fu.vector - row).max()), abs(fu.bias - bias))
    return worst


def main() -> int:
    data = collabkit.load_dataset("ml-latest-small", progress=False)
    model = collabkit.BiasedMF(random_state=0).fit(data)
    users = [_ratings_of(data, u) for u in range(N_USERS)]
    for k, v in latency(model, users).items():
        print(f"{k}: {v}")
    for vf in (0.1, 0.0):
        print(f"valid_frac={vf}: largest |fold-in - trained row| over {N_USERS} users "
              f"= {exactness(data, vf):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
