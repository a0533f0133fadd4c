"""Implicit models at scale (issue 13): gfcf top-20 for every gowalla user, iALS's solvers, and
iALS on 25M ML-25M-shaped interactions under a 4 GB peak RSS.

    nice -n 10 .venv/bin/python benchmarks/implicit_scale.py gfcf [--users N] [--lazy]
    nice -n 10 .venv/bin/python benchmarks/implicit_scale.py ials-solvers [--users N]
    nice -n 10 .venv/bin/python benchmarks/implicit_scale.py ials25m [--interactions 25e6]

``gfcf``: fits ``GraphFilter`` with the setting chosen on validation by
``benchmarks/implicit.py`` (448 factors, alpha 0.2, sharpen 2.5) on gowalla's train.txt,
materialised unless ``--lazy``, then ranks every test user's unseen items (full ranking,
top-20, Recall/NDCG on test.txt). The reference run in the same process scores 256 users with
the lazy filter (four propagations per block), so the per-user speed-up is a ratio that the
machine's load affects much less than the seconds.

``ials-solvers``: the same iALS setting as ``benchmarks/implicit.py``'s gowalla row (128
factors, 8 sweeps) fitted with ``solver="cg"`` (the default) and ``solver="cholesky"``; fit
seconds, their ratio and the test metrics of both.

``ials25m``: in a fresh process (so ``ru_maxrss`` is this run's own), generates ML-25M-shaped
ratings (:func:`collabkit.testing.scale.ml25m_like`), keeps every rated pair as an
interaction (:func:`collabkit.data.implicit.to_implicit`), fits iALS (64 factors, 5 sweeps,
CG) and ranks the unseen items of 10,000 users; time and peak RSS after every phase, against
the 4 GB budget.

``--users N`` keeps N random gowalla users (seed 0) for a quick check. Results go to
``benchmarks/results/implicit_scale_<mode>.{md,json}`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_GB = 4.0
GFCF = {"n_factors": 448, "alpha": 0.2, "sharpen": 2.5, "random_state": 0}
IALS = {"n_factors": 128, "epochs": 8, "reg": 0.003, "unobserved_weight": 0.1, "alpha": 1.0,
        "random_state": 0}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def gowalla(users: int | None) -> tuple[Any, Any]:
    """Gowalla's canonical split, or the rows of ``users`` random users (seed 0)."""
    from collabkit.data.implicit import load_gowalla

    train, test = load_gowalla()
    if users:
        ids = np.unique(train.user_vocab.ids(train.users))
        pick = np.random.default_rng(0).choice(ids, min(users, ids.size), replace=False)
        train = train.take(np.flatnonzero(np.isin(train.user_vocab.ids(train.users), pick)))
        test = test.take(np.flatnonzero(np.isin(test.user_vocab.ids(test.users), pick)))
    return train, test


def run_gfcf(args: argparse.Namespace) -> dict[str, Any]:
    from collabkit.metrics.fullrank import evaluate_ranking
    from collabkit.models.implicit import GraphFilter

    train, test = gowalla(args.users)
    out: dict[str, Any] = {"params": {**GFCF, "materialize": not args.lazy},
                           "load_before": _load()}
    t0 = time.perf_counter()
    model = GraphFilter(**GFCF, materialize=not args.lazy).fit(train)
    out["fit_seconds"] = time.perf_counter() - t0
    out["load_after_fit"] = _load()
    r = evaluate_ranking(model, test, 20)
    out.update(rank_seconds=r.seconds, ranked_users=r.n_users, recall=r.metrics["recall"],
               ndcg=r.metrics["ndcg"], load_after_rank=_load())
    # reference in the same process: the lazy filter on 256 users, and the scores agree
    sample = np.random.default_rng(1).choice(len(model.user_vocab_), 256, replace=False)
    t0 = time.perf_counter()
    lazy = model._filter_rows(model._user_rows(sample))
    out["lazy_seconds_per_user"] = (time.perf_counter() - t0) / len(sample)
    got = model._score_users(sample)
    out["max_abs_diff_vs_lazy"] = float((got - lazy).abs().max())
    out["rank_seconds_per_user"] = r.seconds / r.n_users
    out["speedup_vs_lazy"] = out["lazy_seconds_per_user"] / out["rank_seconds_per_user"]
    out["peak_gb"] = _peak_gb()
    return out


def run_ials_solvers(args: argparse.Namespace) -> dict[str, Any]:
    from collabkit.metrics.fullrank import evaluate_ranking
    from collabkit.models.implicit import ImplicitALS

    train, test = gowalla(args.users)
    out: dict[str, Any] = {"params": IALS, "runs": {}}
    for solver in args.solvers:
        load = _load()
        t0 = time.perf_counter()
        model = ImplicitALS(**IALS, solver=solver).fit(train)
        fit_s = time.perf_counter() - t0
        r = evaluate_ranking(model, test, 20)
        out["runs"][solver] = {"fit_seconds": fit_s, "recall": r.metrics["recall"],
                               "ndcg": r.metrics["ndcg"], "load_before": load,
                               "load_after": _load()}
        print(f"[ials] {solver}: fit {fit_s:.1f} s, recall {r.metrics['recall']:.4f}, ndcg "
              f"{r.metrics['ndcg']:.4f}, load {load} -> {_load()}", file=sys.stderr, flush=True)
    runs = out["runs"]
    if {"cg", "cholesky"} <= set(runs):
        out["cholesky_over_cg"] = runs["cholesky"]["fit_seconds"] / runs["cg"]["fit_seconds"]
    return out


def ials25m_one(n: int, n_users: int = 10_000) -> dict[str, Any]:
    """Every phase at one size, in this process."""
    from collabkit.data.implicit import to_implicit
    from collabkit.metrics.fullrank import topk_unseen
    from collabkit.models.implicit import ImplicitALS
    from collabkit.testing.scale import ml25m_like

    out: dict[str, Any] = {"n_ratings": n, "load_before": _load(), "phases": {}}

    def phase(name: str, t0: float) -> None:
        out["phases"][name] = {"seconds": time.perf_counter() - t0, "peak_gb": _peak_gb()}

    t0 = time.perf_counter()
    data = to_implicit(ml25m_like(n, seed=0).data)
    out.update(n_users=data.n_users, n_items=data.n_items, n_interactions=len(data))
    phase("generate", t0)
    t0 = time.perf_counter()
    model = ImplicitALS(n_factors=64, epochs=5, random_state=0).fit(data)
    del data
    out["sweep_seconds"] = [h["seconds"] for h in model.history_]
    phase("fit", t0)
    t0 = time.perf_counter()
    users = np.random.default_rng(0).choice(len(model.user_vocab_),
                                            min(n_users, len(model.user_vocab_)), replace=False)
    rec = topk_unseen(model, users, 20)
    out["ranked_users"] = int((rec[:, 0] >= 0).sum())
    phase("top-20", t0)
    out["peak_gb"] = _peak_gb()
    out["load_after"] = _load()
    return out


def run_ials25m(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", str(int(args.interactions)),
               "--json", tmp.name]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
        if proc.returncode != 0:
            return {"n_ratings": int(args.interactions), "error": proc.stderr.strip()[-800:]}
        row = json.loads(Path(tmp.name).read_text(encoding="utf-8"))
    row["wall"] = time.perf_counter() - t0
    row["within_budget"] = row["peak_gb"] <= BUDGET_GB
    return row


def markdown(mode: str, row: dict[str, Any], meta: dict[str, Any]) -> str:
    out = [f"# Implicit at scale: {mode}", "",
           f"{meta['date']}, {meta['machine']}; command `{meta['command']}`; load average "
           "(1/5/15 min) beside each number.", "", "```json", json.dumps(row, indent=1), "```"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", nargs="?", choices=["gfcf", "ials-solvers", "ials25m"])
    ap.add_argument("--users", type=int, help="keep N random gowalla users (quick check)")
    ap.add_argument("--lazy", action="store_true", help="gfcf without the materialised filter")
    ap.add_argument("--solvers", nargs="+", default=["cg", "cholesky"],
                    choices=["cg", "cholesky"], help="ials-solvers: which to fit")
    ap.add_argument("--interactions", type=float, default=25e6, help="ials25m size")
    ap.add_argument("--out", help="writes OUT.md and OUT.json")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        Path(args.json).write_text(json.dumps(ials25m_one(args.one)), encoding="utf-8")
        return 0
    if args.mode is None:
        ap.error("choose a mode: gfcf, ials-solvers or ials25m")
    run = {"gfcf": run_gfcf, "ials-solvers": run_ials_solvers, "ials25m": run_ials25m}
    row = run[args.mode](args)
    print(json.dumps(row), flush=True)
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "command": " ".join(["benchmarks/implicit_scale.py", *sys.argv[1:]])}
    suffix = f"-users{args.users}" if args.users else ""
    out = Path(args.out or RESULTS / f"implicit_scale_{args.mode}{suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown(args.mode, row, meta), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "row": row}, indent=1),
                                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
