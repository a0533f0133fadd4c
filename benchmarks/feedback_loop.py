"""The feedback loop on MovieLens 100k, simulated: does what we show narrow what we learn?

    nice -n 10 .venv/bin/python benchmarks/feedback_loop.py --markdown docs/feedback-loop.md

Protocol (also written into docs/feedback-loop.md):

1. *Truth.* BiasedMF (default parameters, ``valid_frac=0``, seed 0) fitted on all 100,000
   ml-100k ratings. Its predicted rating ``T[u, i]`` is user u's true taste for item i.
2. *Start.* The system knows each user's 20 earliest real ratings (ml-100k guarantees 20) and
   trains BiasedMF (default parameters, seed 1) on them.
3. *Rounds* (10). Every one of the 943 users is shown a list of 10 items they have not rated,
   chosen by the policy from the system's current predictions. The user rates each shown item
   with probability ``sigmoid(2 (T - 4))`` (0.27 at a true 3.5 stars, 0.73 at 4.5), giving
   ``clip(round(T + N(0, 0.5)), 1, 5)``. Shown items a user did not rate stay eligible.
   After the round every user is folded in again from all their ratings
   (:func:`collabkit.recommend.foldin.fold_in_users`, population prior); every
   ``--retrain-every`` rounds (3) the system model is refitted on all ratings so far.
4. *Policies* (:mod:`collabkit.recommend.rerank`): plain top-10; MMR on the item factors
   (pool 100); popularity-debiased (pool 100); explore (the last slots sampled from the
   pool of 100 or 200). Every policy sees the same truth, start and random stream for the
   users' choices.
5. *Per round*: catalog coverage (share of the 1,682 items in at least one list this
   round, and cumulatively since round 1), Gini of exposure over the catalogue (this round),
   mean popularity percentile of shown items (popularity = ratings the system holds), and
   NDCG@10 against true preferences: the gain of item i for user u is
   ``max(0, T[u, i] - mean_j T[u, j])`` (how much better than the user's average item) and
   the ideal list is the user's 10 truly best items they have not rated yet; averaged over
   users. Coverage, Gini and popularity come from :mod:`collabkit.metrics.exposure`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabkit.api import load_dataset
from collabkit.data.interactions import Interactions
from collabkit.metrics.exposure import catalog_coverage, exposure_gini, mean_popularity_percentile
from collabkit.models.biased_mf import BiasedMF
from collabkit.recommend.foldin import fold_in_users
from collabkit.recommend.rerank import item_factors, rerank

BEGIN, END = "<!-- feedback-loop:begin -->", "<!-- feedback-loop:end -->"
N_LIST = 10


@dataclass(frozen=True)
class PolicySpec:
    """A named policy and its options for :func:`collabkit.recommend.rerank.rerank`."""

    label: str
    policy: str
    options: dict[str, Any] = field(default_factory=dict)


POLICIES = (
    PolicySpec("top-10", "top"),
    PolicySpec("MMR λ=0.5", "mmr", {"lam": 0.5, "pool": 100}),
    PolicySpec("MMR λ=0.3", "mmr", {"lam": 0.3, "pool": 100}),
    PolicySpec("debias β=0.5", "debias", {"beta": 0.5, "pool": 100}),
    PolicySpec("debias β=1", "debias", {"beta": 1.0, "pool": 100}),
    PolicySpec("explore 3 of 10", "explore", {"n_explore": 3, "pool": 100,
                                             "temperature": 0.25}),
    PolicySpec("explore 5 of 10", "explore", {"n_explore": 5, "pool": 100,
                                             "temperature": 0.25}),
    PolicySpec("explore 5 of 10, pool 200", "explore", {"n_explore": 5, "pool": 200,
                                                       "temperature": 0.25}),
)


# ----------------------------------------------------------------------------- setup
@dataclass
class World:
    """The simulated users: true tastes, the catalogue, the starting ratings."""

    items: np.ndarray          # raw ids of the catalogue, column order of ``truth``
    users: np.ndarray          # raw ids, row order of ``truth``
    truth: np.ndarray          # (users, items) true ratings
    start: pd.DataFrame        # user, item, rating: what the system knows at round 0
    rating_range: tuple[float, float]
    unit_factors: np.ndarray   # the truth's item factors, unit length (list similarity)


def make_world(data_dir: str, n_start: int, seed: int) -> World:
    data = load_dataset("ml-100k", data_dir=data_dir, download=False, progress=False)
    truth_model = BiasedMF(valid_frac=0.0, random_state=seed).fit(data)
    users, items = truth_model.user_vocab_.all_ids, truth_model.item_vocab_.all_ids
    truth = truth_model._score_users(np.arange(len(users))).double().cpu().numpy()
    df = data.to_dataframe().sort_values(["user", "timestamp", "item"], kind="stable")
    start = df.groupby("user", sort=False).head(n_start)[["user", "item", "rating"]]
    q = item_factors(truth_model)
    unit = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return World(items, users, truth, start.reset_index(drop=True), data.rating_range, unit)


def list_similarity(world: World, picked: np.ndarray) -> float:
    """Mean pairwise cosine of the truth's item factors within a list, averaged over lists."""
    v = world.unit_factors[np.maximum(picked, 0)] * (picked >= 0)[..., None]
    gram = np.einsum("uik,ujk->uij", v, v)
    n = (picked >= 0).sum(1)
    pairs = n * (n - 1)
    off = gram.sum((1, 2)) - np.einsum("uii->u", gram)
    return float(np.mean(off[pairs > 0] / pairs[pairs > 0]))


# ----------------------------------------------------------------------------- one run
def fit_system(ratings: pd.DataFrame, rating_range: tuple[float, float],
               seed: int) -> BiasedMF:
    data = Interactions.from_dataframe(ratings, rating_range=rating_range, name="loop")
    return BiasedMF(random_state=seed).fit(data)


def system_scores(model: BiasedMF, ratings: pd.DataFrame, world: World) -> np.ndarray:
    """Every user folded in from all their ratings; scores in the world's (users, items)."""
    folded = fold_in_users(model, ratings)
    s = folded.scores()
    out = np.full(world.truth.shape, -np.inf)
    rows = pd.Index(world.users).get_indexer(folded.users)
    cols = pd.Index(world.items).get_indexer(model.item_vocab_.all_ids)
    out[np.ix_(rows, cols)] = s
    return out


def ndcg_truth(world: World, picked: np.ndarray, rated: np.ndarray) -> float:
    """Mean NDCG@10 of the lists against true tastes (see the module docstring)."""
    gain = np.maximum(world.truth - world.truth.mean(1, keepdims=True), 0.0)
    gain = np.where(rated, 0.0, gain)
    disc = 1.0 / np.log2(np.arange(2, N_LIST + 2))
    got = np.where(picked >= 0, np.take_along_axis(gain, np.maximum(picked, 0), 1), 0.0)
    ideal = -np.sort(-gain, axis=1)[:, :N_LIST]
    dcg, idcg = got @ disc, ideal @ disc
    return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)))


def run_policy(world: World, spec: PolicySpec, rounds: int, retrain_every: int,
               seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)  # the users' choices: the same stream for every policy
    n_users, n_items = world.truth.shape
    ratings = world.start.copy()
    uix = pd.Index(world.users).get_indexer(ratings["user"])
    iix = pd.Index(world.items).get_indexer(ratings["item"])
    rated = np.zeros((n_users, n_items), dtype=bool)
    rated[uix, iix] = True
    model = fit_system(ratings, world.rating_range, seed + 1)
    served_ever: set[Any] = set()
    out = []
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        scores = np.where(rated, -np.inf, system_scores(model, ratings, world))
        extra: dict[str, Any] = {}
        if spec.policy == "mmr":
            f = np.zeros((n_items, model.n_factors))
            f[pd.Index(world.items).get_indexer(model.item_vocab_.all_ids)] = item_factors(model)
            extra["factors"] = f
        popularity = rated.sum(0)
        if spec.policy == "debias":
            extra["popularity"] = popularity
        if spec.policy == "explore":
            extra["seed"] = [seed, r]  # its own stream: the users' choices stay aligned
        picked = rerank(scores, N_LIST, spec.policy, **extra, **spec.options)
        ndcg = ndcg_truth(world, picked, rated)
        u, k = np.nonzero(picked >= 0)
        shown = picked[u, k]
        log = pd.DataFrame({"time": r, "user": world.users[u], "item": world.items[shown],
                            "rank": k + 1, "tier": "personal"})
        served_ever.update(log["item"].tolist())
        pop = pd.Series(popularity, index=world.items)
        true_shown = world.truth[u, shown]
        rates = rng.random(len(u)) < 1.0 / (1.0 + np.exp(-2.0 * (true_shown - 4.0)))
        lo, hi = world.rating_range
        value = np.clip(np.round(true_shown + rng.normal(0.0, 0.5, len(u))), lo, hi)
        new = pd.DataFrame({"user": world.users[u[rates]], "item": world.items[shown[rates]],
                            "rating": value[rates]})
        rated[u[rates], shown[rates]] = True
        ratings = pd.concat([ratings, new], ignore_index=True)
        if retrain_every and r % retrain_every == 0 and r < rounds:
            model = fit_system(ratings, world.rating_range, seed + 1 + r)
        out.append({
            "policy": spec.label, "round": r,
            "coverage": catalog_coverage(log, n_items),
            "coverage_cum": len(served_ever) / n_items,
            "gini": exposure_gini(log, n_items),
            "pop_pct": mean_popularity_percentile(log, pop),
            "ndcg": ndcg, "true_shown": float(true_shown.mean()),
            "ils": list_similarity(world, picked),
            "new_ratings": int(rates.sum()), "seconds": time.perf_counter() - t0})
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- report
RATIOS = ("coverage", "coverage_cum", "ndcg")


def with_ratios(res: pd.DataFrame) -> pd.DataFrame:
    """Add each metric's ratio to plain top-10's in the same seed and round."""
    base = res[res["policy"] == POLICIES[0].label].set_index(["seed", "round"])
    key = pd.MultiIndex.from_frame(res[["seed", "round"]])
    out = res.copy()
    for m in RATIOS:
        out[f"{m}_x"] = res[m].to_numpy() / base[m].reindex(key).to_numpy()
    return out


def _pm(values: pd.Series, fmt: str) -> str:
    if len(values) < 2:
        return format(values.mean(), fmt)
    return f"{format(values.mean(), fmt)} ± {format(values.std(ddof=1), fmt)}"


def goal_lines(res: pd.DataFrame, rounds: int) -> list[str]:
    """Which policies keep >= 2x top-10's coverage with NDCG@10 within 5 % (seed means)."""
    last = res[res["round"] == rounds].groupby("policy", sort=False)
    lines = []
    for name, part in last:
        if name == POLICIES[0].label:
            continue
        cov, cum, nd = (part[f"{m}_x"] for m in RATIOS)
        ok = cov.mean() >= 2.0 and nd.mean() >= 0.95
        per_seed = int(((cov >= 2.0) & (nd >= 0.95)).sum())
        lines.append(f"| {name} | {cov.mean():.2f}× ({cov.min():.2f}–{cov.max():.2f}) | "
                     f"{cum.mean():.2f}× ({cum.min():.2f}–{cum.max():.2f}) | "
                     f"{100 * (nd.mean() - 1):+.1f} % ({100 * (nd.min() - 1):+.1f} to "
                     f"{100 * (nd.max() - 1):+.1f}) | {'yes' if ok else 'no'} "
                     f"({per_seed} of {len(part)} seeds) |")
    return ["Ratios to plain top-10 in the same seed and round: mean (min–max over seeds).", "",
            "| policy | coverage vs top-10 (this round) | coverage vs top-10 (all rounds) | "
            "NDCG@10 vs top-10 | goal met (this round's coverage) |",
            "|---|---|---|---|---|", *lines]


def tables(res: pd.DataFrame, rounds: int) -> str:
    res = with_ratios(res)
    n_seeds = res["seed"].nunique()
    spread = " (mean ± sd over seeds)" if n_seeds > 1 else ""
    last = res[res["round"] == rounds]
    lines = [f"### After round {rounds}{spread}", "",
             "| policy | coverage (round) | coverage (all rounds) | exposure Gini | "
             "popularity pct | list similarity | NDCG@10 (truth) | mean true rating shown |",
             "|---|---|---|---|---|---|---|---|"]
    for name, part in last.groupby("policy", sort=False):
        lines.append(
            f"| {name} | {_pm(part.coverage, '.3f')} | {_pm(part.coverage_cum, '.3f')} | "
            f"{_pm(part.gini, '.3f')} | {_pm(part.pop_pct, '.1f')} | {_pm(part.ils, '.3f')} | "
            f"{_pm(part.ndcg, '.4f')} | {_pm(part.true_shown, '.3f')} |")
    lines += ["", f"### The goal: ≥ 2× top-10's coverage after round {rounds}, NDCG@10 within "
              "5 %", "", *goal_lines(res, rounds), "", "### Per round (mean over seeds)", ""]
    mean = res.groupby(["round", "policy"], sort=False)[["coverage", "gini", "ndcg"]].mean()
    for metric, label in (("coverage", "catalog coverage (this round)"),
                          ("gini", "exposure Gini (this round)"),
                          ("ndcg", "NDCG@10 against true preferences")):
        wide = mean[metric].unstack("policy")[[p.label for p in POLICIES]]
        lines += [f"**{label}**", "", "| round | " + " | ".join(wide.columns) + " |",
                  "|---" * (len(wide.columns) + 1) + "|"]
        for rnd, row in wide.iterrows():
            fmt = ".4f" if metric == "ndcg" else ".3f"
            lines.append(f"| {rnd} | " + " | ".join(format(v, fmt) for v in row) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=os.environ.get(
        "COLLABKIT_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "datasets")))
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--retrain-every", type=int, default=3)
    p.add_argument("--start", type=int, default=20, help="Ratings per user known at round 0.")
    p.add_argument("--seeds", type=int, default=3, help="How many seeds (truth, start, users).")
    p.add_argument("--first-seed", type=int, default=0, help="Seeds run from this one up.")
    p.add_argument("--markdown", default=None, help="Replace the table in this file.")
    p.add_argument("--csv", default=None, help="Write every (seed, policy, round) row here.")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    runs = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        world = make_world(args.data_dir, args.start, seed)
        for spec in POLICIES:
            runs.append(run_policy(world, spec, args.rounds, args.retrain_every, seed)
                        .assign(seed=seed))
            print(f"seed {seed} {spec.label}: {runs[-1]['seconds'].sum():.1f} s",
                  file=sys.stderr)
    res = pd.concat(runs, ignore_index=True)
    if args.csv:
        res.to_csv(args.csv, index=False, float_format="%.6g")
    body = tables(res, args.rounds)
    body += (f"\n{len(world.users)} users, {len(world.items)} items, {len(world.start)} "
             f"starting ratings, {args.rounds} rounds, retrain every {args.retrain_every}, "
             f"seeds {seeds[0]}-{seeds[-1]}; {time.perf_counter() - t0:.0f} s in all.\n")
    print(body)
    if args.markdown:
        path = Path(args.markdown)
        text = path.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            print(f"{path} has no {BEGIN} ... {END} block to replace", file=sys.stderr)
            return 1
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END),
                      lambda _: f"{BEGIN}\n{body}{END}", text, flags=re.S)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
