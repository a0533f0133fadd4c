"""The implicit models' defaults, chosen by `collabkit tune` on training rows only (issue 13).

    nice -n 10 .venv/bin/python benchmarks/implicit_defaults.py                 # everything
    nice -n 10 .venv/bin/python benchmarks/implicit_defaults.py --quick         # a tiny run
    nice -n 10 .venv/bin/python benchmarks/implicit_defaults.py --kinds ease --datasets ml-100k

Protocol:

- Tuning data = *training rows only*. ml-100k and ml-latest-small as implicit data (every rated
  pair an interaction) less each user's last interaction by timestamp (``api.split(data,
  "last", k=1)``, train part: exactly the training rows of ``benchmarks/implicit_peers.py``,
  so its test items are never seen); gowalla's train.txt (its test.txt is never read here).
- Per (kind, data set): ``collabkit.tune(train, kind, trials=N, seed=0, timeout=T,
  carve="random")`` with no
  test table: validation is tune's own carve, a random 20 % of each user's rows (seed 0),
  scored by NDCG@20 under full ranking. Every trial (params, score, seconds) is recorded.
  ``--timeout`` stops *starting* trials; the trial in flight and tune's refit still finish.
- Gowalla (29,858 users, 40,981 items, 810k rows) is costly: fewer trials (``--gowalla-trials``),
  ``n_factors`` capped (:data:`GOWALLA_CAPS`, so one fit stays around a minute on 2 shared
  cores), and EASE is skipped there (a dense 40,981 x 40,981 Gram matrix and its inverse).
- Choice, per kind: candidates = each data set's best parameters and the current defaults;
  each is fitted on every data set's fit part (``carve_validation(train, True, 0.2, 0,
  "random")``: a random share of each user's rows, as for data without timestamps; the
  carve the search used; ``random_state=0``) and scored on its validation part. The candidate
  with the highest mean over data sets of (its NDCG@20 / the best NDCG@20 seen on that data
  set) wins; its values are rounded to readable numbers (:func:`readable`) and the rounded
  setting is scored too: that rounded setting is the ``chosen`` default, and the report shows
  what it really gets. A score already measured for the same parameters on the same carve
  (a search trial) is reused, not refitted.

Writes ``benchmarks/results/implicit-defaults.json`` and ``.md`` (``--quick``:
``implicit-defaults-quick.*``; ``--out`` for another stem);
``--reuse`` keeps the searches already in that JSON. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from collabkit import api, tune
from collabkit.data.implicit import load_gowalla, to_implicit
from collabkit.data.interactions import Interactions
from collabkit.errors import CollabkitError, ModelFitWarning
from collabkit.models import registry
from collabkit.models.search import Dim, Int, search_space
from collabkit.tuning import carve_validation, score

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
KINDS = ("itemknn", "ials", "ease", "gfcf", "bpr")
DATASETS = ("ml-100k", "ml-latest-small", "gowalla")
K = 20
SEED = 0
VALID_FRAC = 0.2
#: kinds not searched on gowalla, and why
GOWALLA_SKIP = {"ease": "skipped on gowalla: EASE needs a dense 40,981 x 40,981 Gram matrix "
                        "and its inverse (several GB each, float32), too costly here"}
#: n_factors caps on gowalla (the rest of each space as declared), to keep fits near a minute
GOWALLA_CAPS = {"ials": 64, "gfcf": 128, "bpr": 128}
QUICK_CAP = 32


def log(msg: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[implicit-defaults {time.strftime('%H:%M:%S')}] {msg} (load {load})",
          file=sys.stderr, flush=True)


def training_rows(name: str) -> Interactions:
    """The training rows of ``name``: never the peer benchmark's test rows."""
    if name == "gowalla":
        train, _ = load_gowalla()
        return train
    data = to_implicit(api.load_dataset(name, download=False))
    train, _ = api.split(data, "last", k=1)
    return train


def default_space(kind: str) -> dict[str, Dim]:
    """The declared space less ``recency``: it needs timestamps, so its default stays off (a
    default must work on any data)."""
    return {p: d for p, d in search_space(kind).items() if p != "recency"}


def space_for(kind: str, dataset: str, quick: bool) -> tuple[dict[str, Dim], str | None]:
    """The searched space, and a note when it differs from the declared one."""
    space = default_space(kind)
    cap = QUICK_CAP if quick else GOWALLA_CAPS.get(kind) if dataset == "gowalla" else None
    if cap is None or "n_factors" not in space:
        return space, None
    dim = space["n_factors"]
    high = min(int(dim.high), cap)
    space["n_factors"] = Int(int(dim.low), high, log=dim.log)
    return space, f"n_factors searched in {int(dim.low)}..{high} (declared {dim.describe()})"


def key(params: dict[str, Any]) -> str:
    """A canonical text form of a parameter setting (dict keys sorted)."""
    return json.dumps({p: params[p] for p in sorted(params)})


def _sig(x: float, digits: int) -> float:
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


def readable(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` rounded to numbers a person would write as a default.

    n_factors: the nearest power of two (on a log scale); epochs: whole, to 5 above 20;
    n_neighbors: one significant digit (two from 100 up); log-scale floats: one significant
    digit; the linear 0..1 (or 0..4) knobs: to 0.05 (alpha of gfcf), 0.1 (reg_exponent), 0.5
    (sharpen); shrink: whole.
    """
    space = default_space(kind)
    out: dict[str, Any] = {}
    for p, v in params.items():
        dim = space.get(p)
        if p == "n_factors":
            out[p] = int(2 ** round(math.log2(max(1, v))))
        elif p == "epochs":
            out[p] = int(round(v / 5) * 5) if v > 20 else int(round(v))
        elif p == "n_neighbors":
            out[p] = int(_sig(v, 2 if v >= 100 else 1))
        elif p == "shrink":
            out[p] = float(round(v))
        elif p == "sharpen":
            out[p] = round(round(v * 2) / 2, 1)
        elif p == "reg_exponent":
            out[p] = round(v, 1)
        elif p == "alpha" and kind == "gfcf":
            out[p] = round(round(v * 20) / 20, 2)
        elif isinstance(v, float) and dim is not None and dim.log:
            out[p] = _sig(v, 1)
        elif isinstance(v, float):
            out[p] = _sig(v, 2)
        else:
            out[p] = v
    return out


def current_defaults(kind: str) -> dict[str, Any]:
    """The constructor defaults of the searched parameters of ``kind``."""
    got = registry.get(kind)().get_params()
    return {p: got[p] for p in default_space(kind)}


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    return v


def run_search(kind: str, dataset: str, train: Interactions, trials: int, timeout: float,
               quick: bool) -> dict[str, Any]:
    space, note = space_for(kind, dataset, quick)
    t0 = time.perf_counter()

    def progress(row: dict[str, Any]) -> None:
        params = {p: _plain(row[p]) for p in space if p in row}
        log(f"  {kind} {dataset} trial {row['trial']}: ndcg@20 {row['score']:.4f} in "
            f"{row['seconds']:.1f} s {params}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelFitWarning)
        res = tune(train, kind, trials=trials, seed=SEED, timeout=timeout,
                   valid_frac=VALID_FRAC, space=space, callback=progress, carve="random")
    rows = []
    for r in res.trials.to_dict("records"):
        rows.append({"trial": int(r["trial"]),
                     "params": {p: _plain(r[p]) for p in space},
                     "ndcg": None if r["state"] != "complete" else float(r["score"]),
                     "seconds": round(float(r["seconds"]), 2), "state": r["state"],
                     "error": r["error"]})
    best = {p: _plain(v) for p, v in res.best_params.items()}
    edges = [p for p, d in space.items() if d.type != "choice" and _at_edge(best[p], d)]
    return {"space": {p: d.describe() for p, d in space.items()}, "space_note": note,
            "trials_asked": trials, "timeout": timeout, "trials": rows,
            "best_params": best, "best_ndcg": res.best_value, "at_edge": edges,
            "n_fit": res.n_fit, "n_valid": res.n_valid, "valid_split": res.valid_split,
            "refit_seconds": round(res.refit_seconds, 2),
            "seconds": round(time.perf_counter() - t0, 1)}


def _at_edge(v: float, dim: Dim) -> bool:
    """Whether ``v`` sits within 5 % of its range's width (log width on a log scale) of an end."""
    lo, hi = float(dim.low), float(dim.high)
    if dim.log:
        lo, hi, v = math.log(lo), math.log(hi), math.log(max(v, 1e-300))
    width = hi - lo
    return width > 0 and (v - lo <= 0.05 * width or hi - v <= 0.05 * width)


def fit_score(kind: str, params: dict[str, Any], carve: tuple[Interactions, Interactions]
              ) -> tuple[float, float]:
    """(validation NDCG@20, seconds) of ``kind`` with ``params`` on a carve."""
    cls = registry.get(kind)
    full = dict(params)
    if "random_state" in cls().get_params():
        full["random_state"] = SEED
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelFitWarning)
        model = cls(**full).fit(carve[0])
    return score(model, carve[1], "ndcg", K), time.perf_counter() - t0


def known_score(search: dict[str, Any] | None, params: dict[str, Any]) -> float | None:
    """The NDCG of a search trial with exactly ``params`` (same carve, same seed), if any."""
    for t in (search or {}).get("trials", []):
        if t["ndcg"] is not None and key(t["params"]) == key(params):
            return float(t["ndcg"])
    return None


def choose(kind: str, rep: dict[str, Any], datasets: list[str],
           carves: dict[str, tuple[Interactions, Interactions]]) -> dict[str, Any]:
    """Score the candidates of ``kind`` on every data set; pick and round the default."""
    searches = rep["searches"].get(kind, {})
    sets = [d for d in datasets if d in searches]
    cands: dict[str, dict[str, Any]] = {}
    origin: dict[str, list[str]] = {}
    for label, params in [("old default", current_defaults(kind))] + [
            (f"best on {d}", searches[d]["best_params"]) for d in sets]:
        cands.setdefault(key(params), params)
        origin.setdefault(key(params), []).append(label)
    scores: dict[str, dict[str, dict[str, Any]]] = {}

    def measure(params: dict[str, Any]) -> None:
        k = key(params)
        scores.setdefault(k, {})
        for d in sets:
            if d in scores[k]:
                continue
            hit = known_score(searches[d], params)
            if hit is not None:
                scores[k][d] = {"ndcg": hit, "seconds": None, "from": "search trial"}
                continue
            value, secs = fit_score(kind, params, carves[d])
            scores[k][d] = {"ndcg": value, "seconds": round(secs, 2), "from": "fitted"}
            log(f"  {kind} on {d}: {params} ndcg@20 {value:.4f} ({secs:.1f} s)")

    for params in cands.values():
        measure(params)

    def best_seen(d: str) -> float:
        return max([searches[d]["best_ndcg"]] + [s[d]["ndcg"] for s in scores.values()])

    def mean_rel(k: str) -> float:
        return sum(scores[k][d]["ndcg"] / best_seen(d) for d in sets) / len(sets)

    winner = max(cands, key=mean_rel)
    chosen = readable(kind, cands[winner])
    measure(chosen)
    origin.setdefault(key(chosen), []).append("chosen (rounded)")
    cands.setdefault(key(chosen), chosen)
    old = key(current_defaults(kind))
    best = {d: best_seen(d) for d in sets}
    table = {d: {"old": scores[old][d]["ndcg"], "new": scores[key(chosen)][d]["ndcg"],
                 "best": best[d]} for d in sets}
    return {"datasets": sets, "old_default": current_defaults(kind), "winner": cands[winner],
            "chosen": chosen,
            "candidates": [{"params": cands[k], "from": origin[k], "scores": scores[k],
                            "mean_relative": round(mean_rel(k), 4)} for k in cands],
            "table": table, "mean_relative_old": round(mean_rel(old), 4),
            "mean_relative_new": round(mean_rel(key(chosen)), 4)}


def search_notes(rep: dict[str, Any]) -> list[str]:
    """Trials asked and timeouts per data set, from the searches themselves."""
    per: dict[str, set[tuple[int, float]]] = {}
    for by_set in rep["searches"].values():
        for d, s in by_set.items():
            per.setdefault(d, set()).add((s["trials_asked"], s["timeout"]))
    notes = [f"{d}: " + "; ".join(f"{n} trials asked, timeout {t:.0f} s per search (stops "
                                  "starting trials)" for n, t in sorted(v))
             for d, v in per.items()]
    if "gowalla" in per:
        caps = ", ".join(f"{k} {v}" for k, v in GOWALLA_CAPS.items())
        notes.append(f"gowalla: n_factors capped ({caps}) so a fit stays near a minute")
    return notes


def markdown(rep: dict[str, Any]) -> str:
    m = rep["meta"]
    out = ["# Implicit models' defaults, chosen by `collabkit tune` on training rows (issue 13)",
           "", f"Command: `{m['command']}`. Started {m['started']}, finished "
           f"{m.get('finished', '(not finished)')}; load average {m['load_start']} at the "
           f"start, {m.get('load_end', '?')} at the end; {m['machine']}.", "",
           "Protocol: `benchmarks/implicit_defaults.py`'s docstring. Tuning data = training "
           "rows only (MovieLens: less each user's last interaction, the peer benchmark's test "
           "rows; gowalla: train.txt). Scores: validation NDCG@20 (full ranking) on tune's "
           "carve (20 % of each user's training rows, seed 0). *rel* = score / best found on "
           "that data set.", ""]
    for note in m.get("notes", []):
        out.append(f"- {note}")
    for part in m.get("merged", []):
        end = part["finished"] or "(stopped once its choices were saved)"
        out.append(f"- merged from `{part['file']}` (its searches and choices): "
                   f"`{part['command']}`, {part['started']} to {end}, load "
                   f"{part['load_start']} to {part['load_end'] or '?'}")
    out.append("")
    for kind, ch in rep.get("choices", {}).items():
        out += [f"## {kind}", "", f"Old default `{key(ch['old_default'])}`; chosen "
                f"`{key(ch['chosen'])}` (rounded from `{key(ch['winner'])}`). Mean rel over "
                f"{', '.join(ch['datasets'])}: old {ch['mean_relative_old']:.3f}, new "
                f"{ch['mean_relative_new']:.3f}.", "",
                "| data set | trials | old default | rel | new default | rel | best found |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for d, t in ch["table"].items():
            s = rep["searches"][kind][d]
            done = sum(1 for r in s["trials"] if r["state"] == "complete")
            out.append(f"| {d} | {done} ({s['seconds']:.0f} s) | {t['old']:.4f} | "
                       f"{t['old'] / t['best']:.3f} | {t['new']:.4f} | "
                       f"{t['new'] / t['best']:.3f} | {t['best']:.4f} |")
        out += ["", "Candidates (validation NDCG@20 per data set; mean rel):", ""]
        for c in ch["candidates"]:
            cells = ", ".join(f"{d} {v['ndcg']:.4f}" for d, v in c["scores"].items())
            out.append(f"- {' / '.join(c['from'])}: `{key(c['params'])}`: {cells}; "
                       f"{c['mean_relative']:.3f}")
        out.append("")
        for d in ch["datasets"]:
            s = rep["searches"][kind][d]
            extra = f"; {s['space_note']}" if s["space_note"] else ""
            edge = f"; best at the edge of: {', '.join(s['at_edge'])}" if s["at_edge"] else ""
            out.append(f"- {d}: space `{s['space']}`{extra}; best `{key(s['best_params'])}` "
                       f"{s['best_ndcg']:.4f}{edge}")
        out.append("")
    for kind, why in rep.get("skipped", {}).items():
        out.append(f"- {kind}: {why}")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny run: ml-100k, 3 trials, n_factors <= 32")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    ap.add_argument("--trials", type=int, default=30, help="trials per MovieLens search")
    ap.add_argument("--gowalla-trials", type=int, default=8, help="trials per gowalla search")
    ap.add_argument("--timeout", type=float, default=360.0,
                    help="seconds per (kind, data set) search (stops starting trials)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output stem (default results/implicit-defaults, with --quick "
                         "results/implicit-defaults-quick: a quick run never overwrites the "
                         "record the tests read)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the searches already in the --out JSON")
    ap.add_argument("--merge", type=Path, nargs="+", default=[],
                    help="keep the searches and choices of these JSON files (runs of this "
                         "script; a later file wins)")
    ap.add_argument("--search-only", action="store_true",
                    help="search, record, and stop before scoring candidates")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("implicit-defaults-quick" if args.quick else "implicit-defaults")
    datasets = ["ml-100k"] if args.quick else args.datasets
    trials = 3 if args.quick else args.trials
    path = args.out.with_suffix(".json")
    old = json.loads(path.read_text()) if args.reuse and path.exists() else {}
    rep: dict[str, Any] = {
        "meta": {"command": " ".join(["benchmarks/implicit_defaults.py", *sys.argv[1:]]
                                     if argv is None else ["benchmarks/implicit_defaults.py",
                                                           *argv]),
                 "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                 "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs shared, torch "
                            f"threads {torch.get_num_threads()}",
                 "notes": []},
        "searches": old.get("searches", {}), "choices": {}, "skipped": {}}
    for other in args.merge:
        part = json.loads(other.read_text())
        for kind, per in part["searches"].items():
            rep["searches"].setdefault(kind, {}).update(per)
        rep["skipped"].update(part.get("skipped", {}))
        rep["choices"].update(part.get("choices", {}))
        rep["meta"].setdefault("merged", []).append(
            {"file": other.name, "command": part["meta"]["command"],
             "started": part["meta"]["started"], "finished": part["meta"].get("finished"),
             "load_start": part["meta"]["load_start"], "load_end": part["meta"].get("load_end")})

    def save() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rep, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(rep))

    carves: dict[str, tuple[Interactions, Interactions]] = {}
    for d in datasets:
        log(f"loading {d}")
        train = training_rows(d)
        fit_rows, valid_rows, _ = carve_validation(train, True, VALID_FRAC, SEED, "random")
        carves[d] = (fit_rows, valid_rows)
        n = trials if d != "gowalla" or args.quick else args.gowalla_trials
        for kind in args.kinds:
            if d == "gowalla" and kind in GOWALLA_SKIP:
                rep["skipped"][kind] = GOWALLA_SKIP[kind]
                continue
            if d in rep["searches"].get(kind, {}):
                log(f"{kind} on {d}: search kept from an earlier run")
                continue
            log(f"{kind} on {d}: searching ({n} trials, timeout {args.timeout:.0f} s; "
                f"{len(train)} training rows)")
            try:
                s = run_search(kind, d, train, n, args.timeout, args.quick)
            except CollabkitError as e:
                rep["skipped"][f"{kind} on {d}"] = f"search failed: {e}"
                log(f"{kind} on {d}: failed: {e}")
                continue
            rep["searches"].setdefault(kind, {})[d] = s
            log(f"{kind} on {d}: best {s['best_ndcg']:.4f} {s['best_params']} "
                f"({len(s['trials'])} trials, {s['seconds']:.0f} s)")
            save()
    for kind in [] if args.search_only else args.kinds:
        if not rep["searches"].get(kind):
            continue
        if kind in rep["choices"]:
            log(f"{kind}: choice kept from a merged run")
            continue
        log(f"{kind}: scoring candidates on {', '.join(datasets)}")
        rep["choices"][kind] = choose(kind, rep, datasets, carves)
        log(f"{kind}: chosen {rep['choices'][kind]['chosen']}")
        save()
    rep["meta"]["notes"] = search_notes(rep)
    rep["meta"]["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rep["meta"]["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    save()
    log(f"wrote {path} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
