"""The `implicit` library's side of ``benchmarks/implicit_peers.py``; runs in ``.bench-venv``.

    .bench-venv/bin/python benchmarks/implicit_peer_side.py --data D.npz --jobs J.json \
        --threads 2 --out OUT            # writes OUT.npz (top-k per job) and OUT.json (times)

It never imports collabkit and computes no metric: ``implicit_peers.py`` (in collabkit's
``.venv``) writes the training matrix and the users to recommend for into ``D.npz``, and scores
the top-k lists this script returns with collabkit's own full-ranking code. Each job fits one
model of implicit's CPU code (``AlternatingLeastSquares``, ``BayesianPersonalizedRanking``,
``BM25Recommender``) with ``num_threads`` as given, then calls its batch ``recommend`` with
``filter_already_liked_items=True`` (implicit's own already-liked filtering) and ``filter_items``
= the items with no training row (collabkit's models do not know them either).

``D.npz``: ``indptr``, ``indices`` (the users x items CSR of training interactions, every value
1), ``shape``, ``users`` (rows to recommend for) and, for sampled metrics on request, ``cand``
(``(n, 1 + n_neg)`` item candidates) with ``cand_users`` (the row of each).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

# benchmarks/implicit.py (collabkit's gowalla benchmark) sits beside this script and would
# shadow the `implicit` package: drop the script's folder from the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def make(model: str, params: dict[str, Any], threads: int, seed: int) -> Any:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender

    if model == "als":
        return AlternatingLeastSquares(**params, num_threads=threads, random_state=seed)
    if model == "bpr":
        return BayesianPersonalizedRanking(**params, num_threads=threads, random_state=seed)
    if model == "bm25":
        return BM25Recommender(**params, num_threads=threads)
    raise SystemExit(f"unknown peer model {model!r}; one of als, bpr, bm25")


def recommend(m: Any, x: sp.csr_matrix, users: np.ndarray, k: int, cold: np.ndarray
              ) -> np.ndarray:
    out = np.full((len(users), k), -1, dtype=np.int64)
    for s in range(0, len(users), 4096):
        ub = users[s : s + 4096]
        ids, _ = m.recommend(ub, x[ub], N=k, filter_already_liked_items=True,
                             filter_items=cold if cold.size else None)
        ids = np.asarray(ids, dtype=np.int64).reshape(len(ub), -1)
        out[s : s + len(ub), : ids.shape[1]] = ids
    return out


def candidate_scores(m: Any, x: sp.csr_matrix, cand: np.ndarray, cand_users: np.ndarray
                     ) -> np.ndarray:
    """Score of each candidate (implicit's ``recommend(items=...)``; absent = -inf)."""
    out = np.full(cand.shape, -np.inf)
    for r, (u, c) in enumerate(zip(cand_users, cand, strict=True)):
        ids, sc = m.recommend(int(u), x[int(u)], N=len(c), items=c,
                              filter_already_liked_items=False)
        pos = {int(i): j for j, i in enumerate(c)}
        for i, v in zip(np.asarray(ids).ravel(), np.asarray(sc).ravel(), strict=True):
            if int(i) in pos:
                out[r, pos[int(i)]] = v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--jobs", required=True, help="JSON list of {id, model, params}")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="writes OUT.npz and OUT.json")
    args = ap.parse_args(argv)
    import implicit

    d = np.load(args.data, allow_pickle=False)
    shape = tuple(int(v) for v in d["shape"])
    x = sp.csr_matrix((np.ones(len(d["indices"]), np.float32), d["indices"], d["indptr"]),
                      shape=shape)
    users = d["users"].astype(np.int64)
    cold = np.flatnonzero(np.diff(x.tocsc().indptr) == 0).astype(np.int64)
    jobs = json.loads(open(args.jobs, encoding="utf-8").read())
    recs: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"implicit": implicit.__version__, "threads": args.threads,
                            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                            "jobs": {}}
    for job in jobs:
        m = make(job["model"], job["params"], args.threads, args.seed)
        load = os.getloadavg()
        t0 = time.perf_counter()
        m.fit(x, show_progress=False)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs[f"rec_{job['id']}"] = recommend(m, x, users, args.k, cold)
        rec_s = time.perf_counter() - t0
        if "cand" in d.files:
            recs[f"sampled_scores_{job['id']}"] = candidate_scores(m, x, d["cand"],
                                                                   d["cand_users"])
        info["jobs"][job["id"]] = {"fit_seconds": fit_s, "recommend_seconds": rec_s,
                                   "load_before": list(load), "load_after":
                                   list(os.getloadavg())}
        print(f"  peer {job['id']} {job['params']}: fit {fit_s:.1f} s, top-{args.k} for "
              f"{len(users)} users {rec_s:.1f} s", file=sys.stderr, flush=True)
    np.savez(args.out + ".npz", **recs)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
