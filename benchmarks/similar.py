"""Similar items with the default model (issue 12): the lists before and after, and the cost.

    COLLABKIT_DATA=../shared/datasets nice -n 10 .venv/bin/python benchmarks/similar.py

1. ``collabkit.fit(ml100k, "dot", random_state=0)`` (the defaults: BiasedMF, ``wd="auto"``),
   then the top 5 for Silence of the Lambs, Star Wars and Toy Story with
   ``similarity="factors"`` (centred factor cosine, the default before issue 12) and with the
   default ``"ratings"`` (adjusted cosine of the training ratings, shrunk by n/(n+100)): the
   spread (max - min similarity, the issue asks > 0.03) and every film's rating count.
2. The time of one ``similar_items`` similarity vector by ratings against one by factors, on a
   synthetic table of 5,000,000 ratings (50,000 users x 100, 20,000 items, 64 factors), median
   of 5 calls each, with the load average (the machine is shared).

Measured 2026-12-01 11:35 UTC (2 shared cores, nice 10): spreads by factors 0.014 / 0.035 /
0.029, by ratings 0.100 / 0.229 / 0.071 (every listed film has 202 ratings or more); 5M
ratings: by ratings 353 ms, by factors 233 ms (1.52x) at load average 20.0 (the test suite was
running beside it).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

import collabkit
from collabkit.interpret.corating import adjusted_cosine
from collabkit.interpret.similar import centred_cosine

FILMS = ("silence of the lambs", "star wars", "toy story")


def lists() -> None:
    data = collabkit.load_dataset("ml-100k", download=False, progress=False)
    model = collabkit.fit(data, "dot", random_state=0, device="cpu")
    for how in ("factors", "ratings"):
        for film in FILMS:
            top = model.similar_items(film, n=5, similarity=how)
            spread = float(np.ptp(top["similarity"]))
            print(f"\n{how:7s} | {film}: spread {spread:.3f}, fewest ratings "
                  f"{int(top['n_ratings'].min())}")
            for r in top.itertuples():
                print(f"  {r.rank}. {r.title:45s} {r.similarity:.3f}  ({r.n_ratings} ratings, "
                      f"{r.shared} shared)")


def _median_ms(call: Callable[[], object]) -> float:
    call()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def cost() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, per = 50_000, 20_000, 100
    items = np.concatenate([np.sort(rng.choice(n_items, per, replace=False))
                            for _ in range(n_users)])
    stored = SimpleNamespace(item_vocab_=range(n_items),
                             seen_indptr_=np.arange(n_users + 1) * per, seen_indices_=items,
                             seen_ratings_=rng.integers(1, 6, n_users * per).astype(np.float32))
    factors = rng.normal(size=(n_items, 64))
    by_ratings = _median_ms(lambda: adjusted_cosine(stored, 7))
    by_factors = _median_ms(lambda: centred_cosine(factors, 7))
    print(f"\n5,000,000 ratings: by ratings {by_ratings:.0f} ms, by factors {by_factors:.0f} ms "
          f"({by_ratings / by_factors:.2f}x), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    lists()
    cost()
