"""Cost of per-row id matching (issue 8) at ml-25m sizes: ``Vocabulary.index`` on big batches.

    .venv/bin/python benchmarks/id_matching.py             # 5M queries against 162,541 users
    .venv/bin/python benchmarks/id_matching.py --n 25000000

Exact matches are one hash lookup; only unmatched rows are retried as the other type (number
<-> string) or stripped. The cases: int ids (nothing retried), the same ids as an object
array with one ``"alice"`` (one row retried), and all ids as strings asked of a model with
int ids (every row retried, vectorised string parsing). Prints seconds per case; not a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from collabkit.data.vocab import Vocabulary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_000_000, help="ids per batch")
    ap.add_argument("--users", type=int, default=162_541, help="ids the model knows (ml-25m)")
    args = ap.parse_args()
    vocab = Vocabulary.from_values(np.arange(1, args.users + 1))
    ids = np.random.default_rng(0).integers(1, args.users + 1, args.n)
    mixed = ids.astype(object)
    mixed[-1] = "alice"
    cases = {"int64 ids": ids, "object ids, one 'alice'": mixed, "ids as strings": ids.astype(str)}
    print(f"{args.n:,} ids against a vocabulary of {args.users:,}")
    for name, batch in cases.items():
        t0 = time.perf_counter()
        idx = vocab.index(batch)
        seconds = time.perf_counter() - t0
        print(f"  {name:<26} {seconds:6.2f} s   unmatched: {int((idx < 0).sum())}")


if __name__ == "__main__":
    main()
