"""Defaults on data unlike MovieLens (issue 14): default ``dot`` vs ``bpmf`` vs Surprise.

    .venv/bin/python benchmarks/defaults.py                  # every set, every model
    .venv/bin/python benchmarks/defaults.py --sets sparse,wide --models dot
    .venv/bin/python benchmarks/defaults.py --no-peers       # collabkit only
    .venv/bin/python benchmarks/defaults.py --models svdpp --no-peers --merge  # add a column

Each set is a (train, test) pair of ratings, scored as a user would see it after
``collabkit train --ratings FILE`` with no options (a random 80/20 split, seed 0, rating range
observed in training) except ml-100k, which uses its own u1 split:

- ``ml-100k``: u1.base / u1.test from ``$COLLABKIT_DATA``.
- ``ml-latest-small``: ``ratings.csv`` from ``$COLLABKIT_DATA``, half stars 0.5-5.
- ``half-star``: ml-latest-small moved to 0.5-4.0 (one star off, clipped), a scale that
  neither starts at 1 nor ends at 5.
- ``sparse``: generated; 3,000 users, a 30,000-item catalog drawn by a Zipf law, so most
  items have 1-3 ratings; integer stars 1-5.
- ``dense``: generated (``collabkit.testing.planted_low_rank``); 2,000 users x 100 items,
  half of the pairs rated; integer stars 1-5.
- ``wide``: generated the same way, 3,000 users x 100 items, continuous -10..+10 with heavy
  noise (like jokes data).

Models: collabkit's ``BiasedMF()`` (kind ``dot``, the default), ``BayesianMF()`` (``bpmf``),
``SVDpp()`` (``svdpp``), the damped-bias baseline and, on request, ``ALS()`` (``als``), each with
``random_state=0``; Surprise ``BaselineOnly()`` and
``SVD(random_state=0)`` run in ``.bench-venv`` (``bash benchmarks/peers_env.sh``) by this same
file with ``--peer-worker``, on the same rows, with the rating scale of the training rows.
Unknown test ids fall back to each library's own answer. ``fit s`` is the wall clock of the
fit alone. Writes ``benchmarks/results/defaults.md`` (``--out``) and prints it; ``--merge``
keeps the results already in ``--out``'s JSON for the models (and peers) not run this time,
and the table says when each part ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PY = ROOT / ".bench-venv" / "bin" / "python"
DATA = Path(os.environ.get("COLLABKIT_DATA", str(ROOT.parent / "shared" / "datasets")))
SETS = ("ml-100k", "ml-latest-small", "half-star", "sparse", "dense", "wide")
MODELS = ("dot", "bpmf", "svdpp", "bias")
PEERS = ("surprise_baseline", "surprise_svd")


def log(msg: str) -> None:
    print(f"[defaults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the sets
def _random_split(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80/20 by rows, as ``collabkit train --ratings FILE`` splits by default."""
    perm = np.random.default_rng(seed).permutation(len(df))
    cut = int(round(0.8 * len(df)))
    return (df.iloc[perm[:cut]].reset_index(drop=True),
            df.iloc[perm[cut:]].reset_index(drop=True))


def _ml100k() -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = ["user", "item", "rating", "timestamp"]
    read = lambda p: pd.read_csv(p, sep="\t", names=cols)[cols[:3]]  # noqa: E731
    return read(DATA / "ml-100k" / "u1.base"), read(DATA / "ml-100k" / "u1.test")


def _ml_small(shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(DATA / "ml-latest-small" / "ratings.csv")
    df = df.rename(columns={"userId": "user", "movieId": "item"})[["user", "item", "rating"]]
    if shift:
        df["rating"] = (df["rating"] - shift).clip(0.5, 5.0 - shift)
    return _random_split(df)


def _sparse(seed: int = 0, n_users: int = 3000, n_items: int = 30000,
            n_ratings: int = 60000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A long-tail catalog (:func:`collabkit.testing.synthetic.long_tail`), split 80/20."""
    from collabkit.testing.synthetic import long_tail

    return _random_split(long_tail(n_users, n_items, n_ratings, seed=seed), seed)


def _planted(n_users: int, n_items: int, noise: float, scale: float, shift: float,
             lo: float, hi: float, integer: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    from collabkit.testing.synthetic import planted_low_rank

    p = planted_low_rank(n_users=n_users, n_items=n_items, k=4, density=0.5, noise=noise,
                         mean=0.0, factor_scale=0.8, seed=0)
    d = p.data
    r = shift + scale * d.ratings.astype(np.float64)
    r = np.clip(np.rint(r) if integer else np.round(r, 2), lo, hi)
    df = pd.DataFrame({"user": d.user_vocab.ids(d.users), "item": d.item_vocab.ids(d.items),
                       "rating": r})
    return _random_split(df)


def make_set(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if name == "ml-100k":
        return _ml100k()
    if name == "ml-latest-small":
        return _ml_small()
    if name == "half-star":
        return _ml_small(shift=1.0)
    if name == "sparse":
        return _sparse()
    if name == "dense":
        return _planted(2000, 100, 0.7, 1.0, 3.5, 1, 5, integer=True)
    if name == "wide":
        return _planted(3000, 100, 0.8, 4.5, 0.8, -10, 10, integer=False)
    raise SystemExit(f"unknown set {name!r}; sets are {', '.join(SETS)}")


def describe(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    counts = train.groupby("item").size()
    return {"users": int(train.user.nunique()), "items": int(train.item.nunique()),
            "train": len(train), "test": len(test),
            "scale": f"{train.rating.min():g}..{train.rating.max():g}",
            "items_1_3": float((counts <= 3).mean())}


# ----------------------------------------------------------------------------- collabkit
def run_collabkit(model: str, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    import warnings

    import collabkit
    from collabkit.data.interactions import Interactions

    data = Interactions.from_dataframe(train, name="train")
    from collabkit.models import registry

    est = {"dot": lambda: collabkit.BiasedMF(random_state=0),
           "bpmf": lambda: collabkit.BayesianMF(random_state=0),
           "svdpp": lambda: registry.get("svdpp")(random_state=0),
           "als": lambda: registry.get("als")(random_state=0),
           "bias": lambda: collabkit.BiasBaseline()}[model]()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(data)
    fit_s = time.perf_counter() - t0
    pred, _ = est.predict_ratings(test.user.to_numpy(), test.item.to_numpy())
    rmse = float(np.sqrt(np.mean((pred - test.rating.to_numpy()) ** 2)))
    notes = sorted({type(w.message).__name__ for w in caught})
    chosen = getattr(est, "chosen_", None)
    return {"rmse": rmse, "fit_seconds": fit_s, "warnings": notes,
            **({"chosen": chosen} if chosen else {})}


# ----------------------------------------------------------------------------- Surprise
def peer_worker(folder: Path) -> None:
    """Runs in .bench-venv: every ``*.train.csv`` in ``folder``, both Surprise models."""
    from surprise import SVD, BaselineOnly, Dataset, Reader

    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.train.csv")):
        name = path.name[: -len(".train.csv")]
        train = pd.read_csv(path, dtype={"user": str, "item": str})
        test = pd.read_csv(folder / f"{name}.test.csv", dtype={"user": str, "item": str})
        reader = Reader(rating_scale=(float(train.rating.min()), float(train.rating.max())))
        trainset = Dataset.load_from_df(train[["user", "item", "rating"]],
                                        reader).build_full_trainset()
        testset = list(zip(test.user, test.item, test.rating.astype(float), strict=True))
        for peer, algo in (("surprise_baseline", BaselineOnly(verbose=False)),
                           ("surprise_svd", SVD(random_state=0))):
            t0 = time.perf_counter()
            algo.fit(trainset)
            fit_s = time.perf_counter() - t0
            est = np.array([p.est for p in algo.test(testset)])
            rmse = float(np.sqrt(np.mean((est - test.rating.to_numpy()) ** 2)))
            out.setdefault(name, {})[peer] = {"rmse": rmse, "fit_seconds": fit_s}
            log(f"{name} {peer}: rmse {rmse:.4f} fit {fit_s:.2f}s")
    json.dump(out, sys.stdout)


def run_peers(sets: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> dict[str, Any]:
    if not PEERS_PY.exists():
        log(f"{PEERS_PY} does not exist (bash benchmarks/peers_env.sh): no Surprise numbers")
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (train, test) in sets.items():
            train.to_csv(Path(tmp) / f"{name}.train.csv", index=False)
            test.to_csv(Path(tmp) / f"{name}.test.csv", index=False)
        proc = subprocess.run([str(PEERS_PY), __file__, "--peer-worker", tmp],
                              capture_output=True, text=True)
    if proc.returncode:
        log(f"the Surprise worker failed ({proc.returncode}): {proc.stderr[-500:]}")
        return {}
    return json.loads(proc.stdout)


# ----------------------------------------------------------------------------- report
def table(results: dict[str, Any], info: dict[str, Any], models: list[str]) -> str:
    cols = models + [p for p in PEERS if any(p in r for r in results.values())]
    label = {"dot": "default `dot`", "bpmf": "`bpmf`", "svdpp": "`svdpp`", "als": "`als`",
             "bias": "collabkit bias",
             "surprise_baseline": "Surprise BaselineOnly", "surprise_svd": "Surprise SVD"}
    head = ["set", "users x items", "train", "scale", "items with 1-3"] + [label[c] for c in cols]
    if "dot" in cols and any(p in cols for p in PEERS):
        head.append("dot beats both?")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in results.items():
        d = info[name]
        row = [name, f"{d['users']:,} x {d['items']:,}", f"{d['train']:,}", d["scale"],
               f"{d['items_1_3']:.0%}"]
        for c in cols:
            r = res.get(c)
            row.append("-" if r is None else f"{r['rmse']:.4f} ({r['fit_seconds']:.1f} s)")
        if len(head) > len(row):
            peers = [res[p]["rmse"] for p in PEERS if p in res]
            row.append("yes" if "dot" in res and peers and res["dot"]["rmse"] < min(peers)
                       else "**no**")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "defaults.md"))
    ap.add_argument("--merge", action="store_true",
                    help="keep --out's earlier results for what this run does not fit")
    ap.add_argument("--peer-worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--render", action="store_true",
                    help="only rewrite --out from the JSON beside it (no fitting)")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())
        md = render(saved["results"], saved["sets"], saved.get("models", list(MODELS)),
                    saved.get("when", "(time not recorded)"))
        Path(args.out).write_text(md)
        print(md)
        return
    if args.peer_worker:
        peer_worker(Path(args.peer_worker))
        return
    import torch

    torch.set_num_threads(1)
    names, models = args.sets.split(","), args.models.split(",")
    sets = {n: make_set(n) for n in names}
    info = {n: describe(*s) for n, s in sets.items()}
    results: dict[str, dict[str, Any]] = {n: {} for n in names}
    load0 = os.getloadavg()[0]
    for n, (train, test) in sets.items():
        for m in models:
            r = run_collabkit(m, train, test)
            results[n][m] = r
            log(f"{n} {m}: rmse {r['rmse']:.4f} fit {r['fit_seconds']:.2f}s "
                f"{r.get('chosen', '')} {' '.join(r['warnings'])}")
    if not args.no_peers:
        for n, res in run_peers(sets).items():
            results[n].update(res)
    when = (f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {load0:.1f} -> "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.merge and Path(args.out).with_suffix(".json").exists():
        results, info, models, when = _merge(Path(args.out).with_suffix(".json"), results,
                                             info, models, when)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"results": results, "sets": info, "models": models, "when": when}, indent=1,
        default=str))
    md = render(results, info, models, when)
    print(md)
    Path(args.out).write_text(md)


def _merge(path: Path, results: dict[str, Any], info: dict[str, Any], models: list[str],
           when: str) -> tuple[dict[str, Any], dict[str, Any], list[str], str]:
    """This run's results over the saved ones (same sets): a column per model, old or new."""
    saved = json.loads(path.read_text())
    old = saved["results"]
    for name, res in results.items():
        old.setdefault(name, {}).update(res)
    order = [m for m in MODELS + ("als",) if m in set(saved.get("models", [])) | set(models)]
    return (old, {**saved["sets"], **info}, order,
            f"{', '.join(models)} {when}; the rest {saved.get('when', '(time not recorded)')}")


def render(results: dict[str, Any], info: dict[str, Any], models: list[str], when: str) -> str:
    md = (f"# Defaults on data unlike MovieLens\n\nTest RMSE (fit seconds); "
          f"`benchmarks/defaults.py`, {when}, one torch thread.\n\n"
          f"{table(results, info, models)}\n")
    for model in ("dot", "svdpp"):
        chosen = {n: r[model]["chosen"] for n, r in results.items()
                  if "chosen" in r.get(model, {})}
        if not chosen:
            continue
        name = next(iter(chosen.values())).get("strength", "wd")
        md += (f"\nWhat `{model}` chose on its validation rows ({name} tried -> validation "
               "RMSE):\n\n")
        for n, c in chosen.items():
            tried = ", ".join(f"{w:.3g} -> " + ("n/a" if v is None else f"{v:.4f}")
                              for w, v in c[f"{name}_tried"])
            serving = ("the model" if c["serving"] == "model" else
                       f"**the bias baseline** (model {c['model_valid_rmse']:.4f} vs baseline "
                       f"{c['baseline_valid_rmse']:.4f} on validation)")
            md += f"- {n}: {name} {c[name]:.3g} ({tried}); serves {serving}\n"
    return md


if __name__ == "__main__":
    main()
