"""Fold-in for users the model never saw (issue 13): reveal k of a held-out user's interactions,
fold them in, and rank the rest; against popularity.

    nice -n 10 .venv/bin/python benchmarks/implicit_foldin.py                  # ml-latest-small
    nice -n 10 .venv/bin/python benchmarks/implicit_foldin.py --dataset gowalla [--users N]

1. The interactions: ml-latest-small as implicit data (every rated pair), or gowalla's
   train.txt (test.txt is not used). ``--users N`` keeps N random users (seed 0).
2. 10 % of the users (seed 0) are held out: none of their rows is trained on. iALS and gfcf are
   fitted on the other 90 % with fixed settings (below; chosen by hand before this run, not on
   the held-out users).
3. For k = 1, 3, 5, 10, every held-out user with more than k interactions on items the model
   knows reveals k of them (random, seed k); the model folds them in (one batched solve for
   iALS, the filter of the revealed row for gfcf) and ranks every other item; Recall@20 and
   NDCG@20 count the user's remaining interactions. Popularity (the training users per item)
   ranks the same candidates.

Results: ``benchmarks/results/implicit_foldin_<dataset>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

RESULTS = Path(__file__).resolve().parent / "results"
KS = (1, 3, 5, 10)
SETTINGS = {
    "ml-latest-small": {"ials": {"n_factors": 64, "epochs": 10, "reg": 0.01,
                                 "unobserved_weight": 0.1, "random_state": 0},
                        "gfcf": {"n_factors": 256, "alpha": 0.3, "random_state": 0}},
    "gowalla": {"ials": {"n_factors": 128, "epochs": 8, "reg": 0.003, "unobserved_weight": 0.1,
                         "alpha": 1.0, "random_state": 0},
                "gfcf": {"n_factors": 448, "alpha": 0.2, "sharpen": 2.5, "random_state": 0}},
}


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def load(name: str, users: int | None) -> Any:
    from collabkit import api
    from collabkit.data.implicit import load_gowalla, to_implicit

    data = (load_gowalla()[0] if name == "gowalla" else
            to_implicit(api.load_dataset(name, download=False, progress=False)))
    if users:
        ids = np.unique(data.user_vocab.ids(data.users))
        pick = np.random.default_rng(0).choice(ids, min(users, ids.size), replace=False)
        data = data.take(np.flatnonzero(np.isin(data.user_vocab.ids(data.users), pick)))
    return data


def top20(scores: torch.Tensor, revealed: sp.csr_matrix) -> np.ndarray:
    """Top-20 item indices per row with the revealed items left out."""
    coo = revealed.tocoo()
    scores[torch.as_tensor(coo.row, dtype=torch.int64),
           torch.as_tensor(coo.col, dtype=torch.int64)] = -torch.inf
    return torch.topk(scores, 20, dim=1).indices.numpy()


def evaluate(models: dict[str, Any], held: dict[Any, np.ndarray], k: int,
             n_items: int) -> dict[str, Any]:
    from collabkit.metrics.fullrank import ranking_metrics

    rng = np.random.default_rng(k)
    users = [u for u, items in held.items() if len(items) > k]
    reveal = [rng.choice(held[u], k, replace=False) for u in users]
    rest = [np.setdiff1d(held[u], r) for u, r in zip(users, reveal, strict=True)]
    x = sp.csr_matrix((np.ones(k * len(users), np.float32),
                       (np.repeat(np.arange(len(users)), k), np.concatenate(reveal))),
                      shape=(len(users), n_items))
    rows = np.repeat(np.arange(len(users)), [len(r) for r in rest])
    items = np.concatenate(rest)
    out: dict[str, Any] = {"k": k, "users": len(users)}
    for name, model in models.items():
        t0 = time.perf_counter()
        recs = []
        for s in range(0, len(users), 512):
            xb = x[s : s + 512]
            if name == "popularity":
                scores = torch.as_tensor(model.item_popularity_, dtype=torch.float32)
                scores = scores.expand(xb.shape[0], n_items).clone()
            else:
                scores = model._score_rows(xb).float().cpu()
            recs.append(top20(scores, xb))
        m = ranking_metrics(np.concatenate(recs), rows, items, 20, n_items=n_items)
        out[name] = {"recall": m["recall"], "ndcg": m["ndcg"],
                     "fold_in_ms_per_user": 1000 * (time.perf_counter() - t0) / len(users)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-latest-small", choices=list(SETTINGS))
    ap.add_argument("--users", type=int, help="keep N random users (quick check)")
    ap.add_argument("--out", help="writes OUT.md and OUT.json")
    args = ap.parse_args(argv)
    from collabkit.models.implicit import GraphFilter, ImplicitALS

    data = load(args.dataset, args.users)
    uid = data.user_vocab.ids(data.users)
    ids = np.unique(uid)
    held_ids = np.random.default_rng(0).choice(ids, max(1, ids.size // 10), replace=False)
    is_held = np.isin(uid, held_ids)
    train = data.take(np.flatnonzero(~is_held))
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "command": " ".join(["benchmarks/implicit_foldin.py", *sys.argv[1:]]),
        "dataset": args.dataset, "train_rows": len(train), "held_out_users": int(held_ids.size),
        "settings": SETTINGS[args.dataset], "load_before": _load(), "fit_seconds": {}}
    models: dict[str, Any] = {}
    for name, cls in (("ials", ImplicitALS), ("gfcf", GraphFilter)):
        t0 = time.perf_counter()
        models[name] = cls(**SETTINGS[args.dataset][name]).fit(train)
        meta["fit_seconds"][name] = time.perf_counter() - t0
    models["popularity"] = models["ials"]  # its item_popularity_: training users per item
    ref = models["ials"]
    held_rows = data.take(np.flatnonzero(is_held))
    item_idx = ref.item_vocab_.index(held_rows.item_vocab.ids(held_rows.items))
    known = item_idx >= 0
    meta["held_out_rows_on_unknown_items"] = int((~known).sum())
    hu = held_rows.user_vocab.ids(held_rows.users)[known]
    order = np.argsort(hu, kind="stable")
    hu, hi = hu[order], item_idx[known][order]
    cut = np.flatnonzero(np.r_[True, hu[1:] != hu[:-1], True])
    held = {hu[a]: np.unique(hi[a:b]) for a, b in zip(cut[:-1], cut[1:], strict=True)}
    rows = []
    for k in KS:
        rows.append(evaluate(models, held, k, len(ref.item_vocab_)))
        print(json.dumps(rows[-1]), flush=True)
    meta["load_after"] = _load()
    lines = [f"# Fold-in for held-out users: {args.dataset}", "",
             f"{meta['date']}, {meta['machine']}; command `{meta['command']}`; load "
             f"{meta['load_before']} before, {meta['load_after']} after.",
             f"{meta['held_out_users']} held-out users (10 %, seed 0), none of their rows "
             f"trained on; {meta['train_rows']} training rows; settings {meta['settings']}; "
             "fit seconds " + ", ".join(f"{k} {v:.1f}" for k, v in meta["fit_seconds"].items())
             + ".", "",
             "| k revealed | users | popularity R@20 / N@20 | iALS R@20 / N@20 | "
             "gfcf R@20 / N@20 | iALS, gfcf fold-in ms/user | fold-in beats popularity |",
             "|---:|---:|---|---|---|---|---|"]
    for r in rows:
        p, a, g = r["popularity"], r["ials"], r["gfcf"]
        beats = [n for n in ("ials", "gfcf") if r[n]["recall"] > p["recall"]]
        lines.append(f"| {r['k']} | {r['users']} | {p['recall']:.4f} / {p['ndcg']:.4f} | "
                     f"{a['recall']:.4f} / {a['ndcg']:.4f} | {g['recall']:.4f} / "
                     f"{g['ndcg']:.4f} | {a['fold_in_ms_per_user']:.2f}, "
                     f"{g['fold_in_ms_per_user']:.2f} | {', '.join(beats) or 'neither'} |")
    suffix = f"-users{args.users}" if args.users else ""
    out = Path(args.out or RESULTS / f"implicit_foldin_{args.dataset}{suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1),
                                        encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
