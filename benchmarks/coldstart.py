"""Cold start on MovieLens 100k: how good are recommendations after k ratings?

    .venv/bin/python benchmarks/coldstart.py --markdown docs/coldstart.md

Protocol (also written into docs/coldstart.md):

1. Hold out 20% of the ml-100k users entirely (seeded). Train BiasedMF with default
   parameters (random_state=seed) on the other 80%.
2. Shuffle each held-out user's ratings (seeded). The first k = 0, 1, 3, 5, 10, 20 are
   "revealed"; the ratings from position 21 on are the test rows, the same for every k, so
   the numbers are comparable across k. Users with exactly 20 ratings have no test rows and
   are left out; test rows of items the trained model never saw are left out too.
3. Scorers, given the revealed ratings:
   - popularity: items ranked by training rating count; its rating prediction is the global
     mean (it has no notion of the user);
   - bias: damped means, mu + b_u + b_i, with b_u damped from the revealed ratings;
   - fold-in: collabkit.recommend.foldin.fold_in_users on the revealed ratings, with the
     population prior (the default), the matched penalty, and the matched penalty around
     the mean trained row;
   - chain: what recommend_new_user does (popularity at k=0, bias below 5 ratings,
     population fold-in from 5);
   - retrain: BiasedMF retrained from scratch with every held-out user's revealed ratings
     added (at k=0 the trained model, whose unknown users fall back to its baseline).
4. RMSE over all test rows; NDCG@10 per user, averaged over users: the user's test items are
   ranked by the scorer's score and the gain of an item is its rating (so NDCG measures how
   well a scorer orders the items the user actually rated, best first).

A second part measures fold-in fidelity on the canonical u1 split: for trained users, fold in
their own training rows (the validation carve replayed) and compare with the trained rows.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import collabkit.recommend._solve as _solve
import collabkit.recommend.foldin as foldin
from collabkit.data.interactions import Interactions
from collabkit.metrics.ranking_batch import ndcg_batch
from collabkit.models.biased_mf._estimator import BiasedMF
from collabkit.recommend.coldstart import DEFAULT_MIN_PERSONAL
from collabkit.seeds import numpy_rng

KS = (0, 1, 3, 5, 10, 20)
BEGIN, END = "<!-- coldstart:begin -->", "<!-- coldstart:end -->"


# ----------------------------------------------------------------------------- data
def _read_100k(folder: Path, ratings_file: str = "u.data") -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(folder / ratings_file, sep="\t", names=["user", "item", "rating", "timestamp"])
    genres = [line.split("|")[0] for line in
              (folder / "u.genre").read_text(encoding="latin-1").strip().splitlines()]
    raw = pd.read_csv(folder / "u.item", sep="|", encoding="latin-1", header=None)
    flags = raw.iloc[:, 5:5 + len(genres)].to_numpy().astype(bool)
    meta = pd.DataFrame({
        "title": raw[1].to_numpy(),
        "genres": ["|".join(g for g, f in zip(genres, row, strict=True) if f) for row in flags],
    }, index=pd.Index(raw[0].to_numpy(), name="item"))
    return df, meta


def _inter(df: pd.DataFrame, meta: pd.DataFrame) -> Interactions:
    return Interactions.from_dataframe(df, item_meta=meta, rating_range=(1.0, 5.0),
                                       name="ml-100k")


# ----------------------------------------------------------------------------- scorers
def _rank_top(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_rows: int,
              k: int = 10) -> np.ndarray:
    """Top-k test items per user by score (ties: lower item index first), -1 padded."""
    order = np.lexsort((cols, -scores, rows))
    r, c = rows[order], cols[order]
    pos = np.arange(len(r)) - np.searchsorted(r, r)
    keep = pos < k
    out = np.full((n_rows, k), -1, dtype=np.int64)
    out[r[keep], pos[keep]] = c[keep]
    return out


def _metrics(pred: np.ndarray, rank_score: np.ndarray, rows: np.ndarray, cols: np.ndarray,
             y: np.ndarray, n_rows: int) -> tuple[float, float]:
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    top = _rank_top(rank_score, rows, cols, n_rows)
    nd = ndcg_batch(top, rows, cols, y, 10)
    return rmse, float(nd[np.unique(rows)].mean())


def _fold_pred(model: BiasedMF, rev: pd.DataFrame, row_of: pd.Series, rows: np.ndarray,
               cols: np.ndarray, n_rows: int, reg: str, prior: str) -> np.ndarray:
    """Fold-in predictions of the test pairs; users without revealed ratings get the prior."""
    fu = foldin.fold_in_users(model, rev[["user", "item", "rating"]], reg=reg, prior=prior)
    side = _solve._frozen_side(model, "items")
    centre = side.mean_row if prior == "mean" or reg == "population" else 0.0 * side.mean_row
    x = np.tile(centre, (n_rows, 1))
    if len(fu.users):
        x[row_of[fu.users].to_numpy()] = np.column_stack([fu.vectors, fu.biases])
    s = np.einsum("ij,ij->i", x[rows, :-1], side.factors[cols].astype(np.float64)) \
        + x[rows, -1] + side.bias[cols] + side.global_bias
    return _solve._squash(side, s)


def _fit(df: pd.DataFrame, meta: pd.DataFrame, seed: int, cache: Path | None,
         name: str, **params: object) -> BiasedMF:
    """BiasedMF (default parameters unless given), loaded from ``cache/name`` when saved."""
    from collabkit.models.persist import load_model

    if cache is not None and (cache / name).is_dir():
        return load_model(cache / name)
    t = time.perf_counter()
    model = BiasedMF(random_state=seed, **params).fit(_inter(df, meta))  # type: ignore[arg-type]
    print(f"  trained {name} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    if cache is not None:
        model.save(str(cache / name))
    return model


def run_coldstart(df: pd.DataFrame, meta: pd.DataFrame, seed: int, holdout: float,
                  retrain: bool, cache: Path | None) -> tuple[pd.DataFrame, dict[str, float]]:
    rng = np.random.default_rng(seed)
    users = np.sort(df["user"].unique())
    held = np.sort(rng.choice(users, int(round(holdout * len(users))), replace=False))
    is_held = df["user"].isin(held).to_numpy()
    train_df = df[~is_held].reset_index(drop=True)
    model = _fit(train_df, meta, seed, cache, f"coldstart-base-{seed}")
    # reveal order: a seeded shuffle per user
    hdf = df[is_held].copy()
    hdf["key"] = rng.random(len(hdf))
    hdf = hdf.sort_values(["user", "key"], kind="stable")
    hdf["pos"] = hdf.groupby("user").cumcount()
    test = hdf[hdf["pos"] >= max(KS)]
    test = test[model.item_vocab_.index(test["item"].to_numpy()) >= 0]
    test_users = np.sort(test["user"].unique())
    row_of = pd.Series(np.arange(len(test_users)), index=test_users)
    rows = row_of[test["user"]].to_numpy()
    cols = model.item_vocab_.index(test["item"].to_numpy())
    y = test["rating"].to_numpy(np.float64)
    n_rows = len(test_users)
    counts = np.bincount(model.seen_indices_, minlength=len(model.item_vocab_)).astype(float)
    bi = model.item_bias_base_
    results = []
    for k in KS:
        rev = hdf[(hdf["pos"] < k) & hdf["user"].isin(test_users)]
        # bias tier
        rev_idx = model.item_vocab_.index(rev["item"].to_numpy())
        ok = rev_idx >= 0
        off = rev["rating"].to_numpy(np.float64)[ok] - model.global_mean_ - bi[rev_idx[ok]]
        r_rows = row_of[rev["user"].to_numpy()[ok]].to_numpy()
        bu = np.bincount(r_rows, weights=off, minlength=n_rows) / (
            np.bincount(r_rows, minlength=n_rows) + 5.0)
        bias_pred = np.clip(model.global_mean_ + bu[rows] + bi[cols], 1, 5)
        scorers: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "popularity": (np.full(len(y), model.global_mean_), counts[cols]),
            "bias": (bias_pred, bias_pred),
        }
        # fold-in (batched over all test users; users with k=0 get the prior vector)
        t1 = time.perf_counter()
        pop = _fold_pred(model, rev, row_of, rows, cols, n_rows, "population", "mean")
        fold_s = time.perf_counter() - t1
        scorers["fold-in (population)"] = (pop, pop)
        matched = _fold_pred(model, rev, row_of, rows, cols, n_rows, "matched", "zero")
        scorers["fold-in (matched)"] = (matched, matched)
        mean = _fold_pred(model, rev, row_of, rows, cols, n_rows, "matched", "mean")
        scorers["fold-in (matched, mean prior)"] = (mean, mean)
        chain = scorers["popularity"] if k == 0 else scorers["bias"] \
            if k < DEFAULT_MIN_PERSONAL else scorers["fold-in (population)"]
        scorers["chain"] = chain
        if retrain:
            if k == 0:
                pred, _ = model.predict_ratings(test["user"].to_numpy(), test["item"].to_numpy())
            else:
                full = pd.concat([train_df, rev[train_df.columns]], ignore_index=True)
                re_m = _fit(full, meta, seed, cache, f"coldstart-retrain-{seed}-k{k}")
                pred, _ = re_m.predict_ratings(test["user"].to_numpy(), test["item"].to_numpy())
            scorers["retrain"] = (pred, pred)
        for name, (pred, score) in scorers.items():
            rmse, nd = _metrics(pred, score, rows, cols, y, n_rows)
            results.append({"k": k, "method": name, "rmse": rmse, "ndcg@10": nd})
        print(f"k={k}: fold-in of {n_rows} users in {fold_s * 1e3:.0f} ms", file=sys.stderr)
    info = {"n_held": len(held), "n_test_users": n_rows, "n_test_rows": len(y),
            "fit_seconds": model.fit_seconds_ or float("nan"), "n_train": len(train_df),
            "model": repr(model)}
    return pd.DataFrame(results), info


# ----------------------------------------------------------------------------- fidelity
def _fidelity_models() -> list[tuple[str, dict[str, object]]]:
    """BiasedMF settings to check: the default (with its closed-form item and user passes),
    without the passes, trained to convergence, the chapter's AdamW."""
    return [("default (5 epochs + passes)", {}),
            ("5 epochs, no passes", {"refit_users": False}),
            ("50 epochs (converged), no passes", {"epochs": 50, "refit_users": False}),
            ("chapter: AdamW, lr 5e-3, batch 64 (+ passes)",
             {"optimizer": "adamw", "lr": 5e-3, "batch_size": 64}),
            ("chapter: AdamW, lr 5e-3, batch 64, no passes",
             {"optimizer": "adamw", "lr": 5e-3, "batch_size": 64, "refit_users": False})]


def run_fidelity(folder: Path, meta: pd.DataFrame, seed: int, n_users: int,
                 cache: Path | None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fold in trained users' own training rows and compare with their trained rows."""
    base, _ = _read_100k(folder, "u1.base")
    test, _ = _read_100k(folder, "u1.test")
    rows, timing = [], {}
    for label, params in _fidelity_models():
        name = f"u1-{seed}-" + "-".join(f"{k}{v}" for k, v in params.items())
        model = _fit(base, meta, seed, cache, name, **params)
        # replay the validation carve of TorchRecommender._fit: those rows were never trained on
        keep = np.ones(len(base), dtype=bool)
        keep[numpy_rng(model.seed_).permutation(len(base))[
            : int(round(model.valid_frac * len(base)))]] = False
        trained_rows = base[keep]
        users = np.sort(np.random.default_rng(seed).choice(model.user_vocab_.all_ids, n_users,
                                                           replace=False))
        sub = trained_rows[trained_rows["user"].isin(users)]
        ts = test[test["user"].isin(users) & (model.item_vocab_.index(test["item"]) >= 0)]
        r = np.searchsorted(users, ts["user"].to_numpy())
        c = model.item_vocab_.index(ts["item"].to_numpy())
        yt = ts["rating"].to_numpy(np.float64)
        trained = model.score_users(model.user_vocab_.index(users)).double().numpy()
        if not {k: v for k, v in params.items() if k != "refit_users"}:
            # context: how far apart two trainings of the same settings put these users
            other = _fit(base, meta, seed + 1, cache, f"u1-{seed + 1}-" + name.split("-", 2)[2],
                         **params)
            o = other.score_users(other.user_vocab_.index(users)).double().numpy()
            rows.append({"model": label, "penalty": f"(none: seed {seed + 1}'s trained row)",
                         "gap, all items": float(np.sqrt(np.mean((o - trained) ** 2))),
                         "gap, u1.test pairs": float(np.sqrt(np.mean((o[r, c] - trained[r, c])
                                                                     ** 2))),
                         "u1.test RMSE folded": float(np.sqrt(np.mean((o[r, c] - yt) ** 2))),
                         "u1.test RMSE trained": float(np.sqrt(np.mean((trained[r, c] - yt)
                                                                       ** 2)))})
        for reg, prior in (("matched", "zero"), ("matched", "mean"), ("population", "mean")):
            fu = foldin.fold_in_users(model, sub, reg=reg, prior=prior)
            order = pd.Series(np.arange(len(fu.users)), index=fu.users)[users].to_numpy()
            folded = fu.scores()[order]
            rows.append({
                "model": label,
                "penalty": {"zero": "matched", "mean": "matched, mean prior"}[prior]
                if reg == "matched" else reg,
                "gap, all items": float(np.sqrt(np.mean((folded - trained) ** 2))),
                "gap, u1.test pairs": float(np.sqrt(np.mean((folded[r, c] - trained[r, c]) ** 2))),
                "u1.test RMSE folded": float(np.sqrt(np.mean((folded[r, c] - yt) ** 2))),
                "u1.test RMSE trained": float(np.sqrt(np.mean((trained[r, c] - yt) ** 2))),
            })
        if not timing:
            timing = _timing(model, trained_rows, users)
    return pd.DataFrame(rows), timing


def _timing(model: BiasedMF, rows: pd.DataFrame, users: np.ndarray) -> dict[str, float]:
    """Best of 3 wall-clock and CPU times of folding ``users`` in, batched and one by one."""
    sub = rows[rows["user"].isin(users)]
    per_user = [dict(zip(g["item"], g["rating"], strict=True)) for _, g in sub.groupby("user")]

    def best(fn: object) -> tuple[float, float]:
        wall, cpu = math.inf, math.inf
        for _ in range(3):
            w, c = time.perf_counter(), time.process_time()
            fn()  # type: ignore[operator]
            wall = min(wall, time.perf_counter() - w)
            cpu = min(cpu, time.process_time() - c)
        return wall, cpu

    bw, bc = best(lambda: foldin.fold_in_users(model, sub))
    sw, sc = best(lambda: [foldin.fold_in_user(model, r) for r in per_user])
    n = len(per_user)
    return {"batched_ms_per_user": 1e3 * bw / n, "batched_cpu_ms_per_user": 1e3 * bc / n,
            "single_ms_per_user": 1e3 * sw / n, "single_cpu_ms_per_user": 1e3 * sc / n,
            "mean_ratings_per_user": len(sub) / n}


# ----------------------------------------------------------------------------- report
def _markdown(table: pd.DataFrame, info: dict[str, float], fid: pd.DataFrame,
              timing: dict[str, float], args: argparse.Namespace) -> str:
    wide = table.pivot(index="method", columns="k")
    order = [m for m in ("popularity", "bias", "fold-in (population)", "fold-in (matched)",
                         "fold-in (matched, mean prior)", "chain", "retrain")
             if m in wide.index]
    out = [BEGIN, "",
           f"Command: `.venv/bin/python benchmarks/coldstart.py --seed {args.seed} "
           f"--fidelity-users {args.fidelity_users}{'' if args.retrain else ' --no-retrain'} "
           "--markdown docs/coldstart.md` (add `--cache DIR` to reuse trained models)",
           "",
           f"{info['n_held']} held-out users ({info['n_test_users']} with test rows, "
           f"{info['n_test_rows']} test rows); `{info['model']}` trained on "
           f"{info['n_train']} ratings in {info['fit_seconds']:.1f} s.", ""]
    for metric in ("ndcg@10", "rmse"):
        out.append(f"**{metric.upper()}** by number of revealed ratings k "
                   f"({'higher' if metric.startswith('ndcg') else 'lower'} is better)")
        out.append("")
        out.append("| method | " + " | ".join(f"k={k}" for k in KS) + " |")
        out.append("|---|" + "---:|" * len(KS))
        for m in order:
            cells = " | ".join(f"{wide.loc[m, (metric, k)]:.4f}" for k in KS)
            out.append(f"| {m} | {cells} |")
        out.append("")
    out.append("**Fold-in fidelity** (ml-100k u1; for "
               f"{args.fidelity_users} trained users, their own training rows are folded in "
               "and the folded row's predictions compared with the trained row's)")
    out.append("")
    out.append("| model | penalty | gap, all items | gap, u1.test pairs | u1.test RMSE folded | "
               "u1.test RMSE trained |")
    out.append("|---|---|---:|---:|---:|---:|")
    for r in fid.itertuples(index=False):
        out.append(f"| {r[0]} | {r[1]} | " + " | ".join(f"{v:.4f}" for v in r[2:]) + " |")
    out.append("")
    out.append(f"Speed (best of 3, wall / CPU time): {timing['batched_ms_per_user']:.2f} / "
               f"{timing['batched_cpu_ms_per_user']:.2f} ms per user batched, "
               f"{timing['single_ms_per_user']:.2f} / {timing['single_cpu_ms_per_user']:.2f} ms "
               f"per user one at a time ({timing['mean_ratings_per_user']:.0f} ratings per user "
               "on average; 2 shared CPU cores, timings noisy).")
    out.append("")
    out.append(END)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=os.environ.get(
        "COLLABKIT_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "datasets")))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--fidelity-users", type=int, default=200)
    p.add_argument("--no-retrain", dest="retrain", action="store_false")
    p.add_argument("--markdown", help="replace the marked section of this file")
    p.add_argument("--cache", help="save trained models here and reuse them on the next run")
    args = p.parse_args(argv)
    folder = Path(args.data_dir) / "ml-100k"
    df, meta = _read_100k(folder)
    cache = Path(args.cache) if args.cache else None
    table, info = run_coldstart(df, meta, args.seed, args.holdout, args.retrain, cache)
    fid, timing = run_fidelity(folder, meta, args.seed, args.fidelity_users, cache)
    md = _markdown(table, info, fid, timing, args)
    print(md)
    if args.markdown:
        path = Path(args.markdown)
        text = path.read_text(encoding="utf-8") if path.exists() else f"{BEGIN}\n{END}\n"
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        path.write_text(pattern.sub(lambda _m: md, text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
