"""`make bench`: collabkit beside its peers on MovieLens 100k, plus the speed and scale checks.

    .venv/bin/python benchmarks/run.py                 # everything (ml-100k u1..u5, speed, scale)
    .venv/bin/python benchmarks/run.py --quick         # u1 only, speed, scale at 1M only
    .venv/bin/python benchmarks/run.py --peers json    # never run the peers, read their JSON
    .venv/bin/python benchmarks/run.py --speed-only    # rerun speed.py, patch its parts only

1. **Models.** Every model kind registered in ``collabkit.models`` (discovered by importing
   each of its modules, so models added later join without edits here), with its defaults and
   ``random_state=0``, plus the chapter's recipe ``BiasedMF(optimizer="adamw", lr=5e-3,
   batch_size=64)``. Each trains on ``uN.base`` and is scored on ``uN.test``: RMSE, MAE, the
   wall clock of ``fit`` (everything, vocabularies included) and of predicting ``uN.test``.
2. **Peers** (Surprise, fastai) come from ``benchmarks/peers.py`` in ``.bench-venv``: with
   ``--peers auto`` (default) it runs in a subprocess when that venv exists, so both sides are
   timed in the same session; otherwise, or with ``--peers json``, the committed
   ``benchmarks/results/peers-ml100k.json`` is read, and the report says which.
3. **Time to reach an RMSE** on u1: collabkit's BiasedMF and BiasedALS are refitted from
   scratch with 1, 2, ... epochs (sweeps), like Surprise SVD's curve; fastai's curve is its
   test RMSE after each epoch. The targets are the brief's (fastai 0.936, Surprise SVD 0.951)
   and the peers' own final u1 RMSEs.
4. **Speed** (``benchmarks/speed.py``) and **scale** (``benchmarks/scale.py``).
5. **CLI start-up** (``benchmarks/cli_startup.py``): ``collabkit --version``/``--help`` and the
   dataset commands as fresh processes.
6. **Service** (``benchmarks/serve_load.py``): ``collabkit serve`` under 32 clients for 30 s
   on ml-latest-small and ml-100k, and 10 kill -9 rounds (``--no-serve`` skips it).
7. **Distributed** (``benchmarks/distributed.py``, issue 15): ratings/s of the replicate tier
   at world 1, 2 and 4, and the planner at 1B ratings (``--no-distributed`` skips it; it also
   writes ``results/distributed.{json,md}``).
8. **Implicit feedback** (``benchmarks/implicit_peers.py``, issue 13): collabkit's implicit
   models beside the `implicit` library's ALS, BPR and BM25 item-kNN (in ``.bench-venv``),
   every model tuned on the same validation carve, on ml-100k, ml-latest-small and gowalla;
   writes ``implicit-peers.{md,json}`` (``--quick``: ml-100k with small grids, to
   ``implicit-peers-quick.*``; ``--no-implicit`` skips it). It took 51 min on
   this 2-core machine at load ~1, and over an hour for gowalla alone at load ~20.

Everything is written to ``benchmarks/results/README.md`` (markdown) and
``benchmarks/results/collabkit.json``, and printed. ``--speed-only`` reruns only the speed
check and replaces its parts of both files (the speed line of the goals, the speed section and
the ``speed`` entry), leaving the rest of the last full run as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PEERS_JSON = RESULTS / "peers-ml100k.json"
PEERS_PY = ROOT / ".bench-venv" / "bin" / "python"
FOLDS = ("u1", "u2", "u3", "u4", "u5")
TARGETS = {"fastai (brief)": 0.936, "Surprise SVD (brief)": 0.951}
#: BiasedMF without its closed-form passes after the epochs: DotProductBias by gradient descent
EPOCHS_ONLY = "collabkit BiasedMF, epochs only (refit_users=False)"
# ml-100k: $COLLABKIT_DATA (the Makefile sets it) or ../shared/datasets beside the repository
DATA = Path(os.environ.get("COLLABKIT_DATA", ROOT.parent / "shared" / "datasets"))
sys.path.insert(0, str(HERE))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- models
def discover() -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``label -> {"kind", "params"}`` for every registered kind, and modules that failed."""
    from collabkit.models import registry

    failed = []
    classes = {}
    for kind in registry.kinds():
        try:
            classes[kind] = registry.get(kind)
        except Exception as exc:  # a model being written by someone else may not import yet
            failed.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
    configs: dict[str, dict[str, Any]] = {}
    from collabkit.models.implicit import ImplicitRecommender

    for kind, cls in classes.items():
        if issubclass(cls, ImplicitRecommender):  # rankers: benchmarks/implicit.py, not RMSE
            continue
        names = cls._param_names()
        params = {k: v for k, v in (("random_state", 0), ("device", "cpu")) if k in names}
        configs[kind] = {"kind": kind, "params": params}
        if kind == "dot":
            configs["dot (chapter: adamw, bs 64)"] = {
                "kind": kind, "params": {**params, "optimizer": "adamw", "lr": 5e-3,
                                         "batch_size": 64}}
    return configs, failed


def _fit_score(kind: str, params: dict[str, Any], train: Any, test: Any) -> dict[str, Any]:
    from collabkit.metrics.evaluate import evaluate
    from collabkit.models import registry

    model = registry.get(kind)(**params)
    c0, t0 = time.process_time(), time.perf_counter()
    model.fit(train)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    report = evaluate(model, test)
    return {"rmse": report.rmse, "mae": report.mae, "fit_seconds": fit_s,
            "fit_cpu_seconds": fit_cpu, "predict_seconds": time.perf_counter() - t0,
            "n_fallback": report.n_fallback}


def bench_ml100k(configs: dict[str, dict[str, Any]], folds: tuple[str, ...]) -> list[dict]:
    """Every config on every fold; a model that fails is recorded, not fatal."""
    import collabkit

    rows = []
    for fold in folds:
        train, test = collabkit.load_split("ml-100k", fold, data_dir=DATA, download=False,
                                           progress=False)
        for label, cfg in configs.items():
            load = os.getloadavg()[0]
            try:
                res = _fit_score(cfg["kind"], cfg["params"], train, test)
            except Exception as exc:
                res = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            rows.append({"model": label, "fold": fold, "load": load, **res})
            if "error" in res:
                log(f"{fold} {label}: FAILED {res['error']}")
            else:
                log(f"{fold} {label}: RMSE {res['rmse']:.4f} fit {res['fit_seconds']:.2f} s")
    return rows


def curves(max_epochs: int = 6) -> dict[str, list[dict[str, float]]]:
    """u1 test RMSE and fit wall clock of fits with 1..max_epochs epochs (refit each time)."""
    import collabkit
    from collabkit.models.als import BiasedALS

    train, test = collabkit.load_split("ml-100k", "u1", data_dir=DATA, download=False,
                                       progress=False)
    out: dict[str, list[dict[str, float]]] = {"collabkit BiasedMF": [], EPOCHS_ONLY: [],
                                               "collabkit BiasedALS (k=20)": []}
    for e in range(1, max_epochs + 1):
        for label, kind, params in (
                ("collabkit BiasedMF", "dot", {"epochs": e, "random_state": 0, "device": "cpu"}),
                (EPOCHS_ONLY, "dot",
                 {"epochs": e, "random_state": 0, "device": "cpu", "refit_users": False}),
                ("collabkit BiasedALS (k=20)", BiasedALS.kind,
                 {"epochs": e, "n_factors": 20, "random_state": 0, "device": "cpu"})):
            best = min((_fit_score(kind, params, train, test) for _ in range(3)),
                       key=lambda r: r["fit_seconds"])  # median-free: best of 3 wall clocks
            out[label].append({"epochs": e, "fit_seconds": best["fit_seconds"],
                               "rmse": best["rmse"]})
    return out


# ----------------------------------------------------------------------------- peers
def peers(mode: str, folds: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    """The peers' report and a sentence saying where it came from."""
    if mode in ("auto", "run") and PEERS_PY.exists():
        out = RESULTS / "peers-ml100k-run.json"
        cmd = [str(PEERS_PY), str(HERE / "peers.py"), "--folds", *folds, "--threads", "1",
               "--out", str(out)]
        log("running the peers: " + " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            shown = " ".join(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c
                             for c in cmd[1:])
            return json.loads(out.read_text()), (
                f"measured now by `{shown}` in `.bench-venv` (same session)")
        log(f"peers.py failed ({proc.returncode}): {proc.stderr[-300:]}")
    if mode == "run" and not PEERS_PY.exists():
        log(f"{PEERS_PY} does not exist; build it with `bash benchmarks/peers_env.sh`")
    if mode != "skip" and PEERS_JSON.exists():
        rep = json.loads(PEERS_JSON.read_text())
        return rep, (f"read from the committed `{PEERS_JSON.relative_to(ROOT)}` (created "
                     f"{rep.get('created', '?')}), not re-measured in this session")
    return None, "no peer results (no `.bench-venv` and no committed JSON)"


def _peer_rows(rep: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [] if rep is None else [
        {"model": r["model"], "fold": r["fold"], "rmse": r["rmse"], "mae": r["mae"],
         "fit_seconds": r["fit_seconds"], "predict_seconds": r.get("predict_seconds"),
         "curve": r.get("curve"), "peer": True} for r in rep.get("results", [])]


# ----------------------------------------------------------------------------- tables
def _agg(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    v = np.array([r[key] for r in rows], dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def accuracy_table(rows: list[dict[str, Any]], folds: tuple[str, ...]) -> str:
    """RMSE, MAE, fit seconds and the ratio of fit time to collabkit's BiasedMF."""
    ok = [r for r in rows if "error" not in r and r["fold"] in folds]
    labels = list(dict.fromkeys(r["model"] for r in ok))
    ref = [r for r in ok if r["model"] == "dot"]
    ref_fit = _agg(ref, "fit_seconds")[0] if ref else float("nan")
    lines = ["| model | folds | RMSE | MAE | fit s | fit s / collabkit dot |",
             "|---|---:|---|---|---:|---:|"]
    for label in sorted(labels, key=lambda m: _agg([r for r in ok if r["model"] == m],
                                                    "rmse")[0]):
        rs = [r for r in ok if r["model"] == label]
        (rm, rsd), (mm, msd), (fm, _) = (_agg(rs, "rmse"), _agg(rs, "mae"),
                                         _agg(rs, "fit_seconds"))
        name = label if not rs[0].get("peer") else f"{label} (peer)"
        lines.append(f"| {name} | {len(rs)} | {rm:.4f} ± {rsd:.4f} | {mm:.4f} ± {msd:.4f} | "
                     f"{fm:.2f} | {fm / ref_fit:.1f}x |")
    failed = sorted({f"{r['model']}: {r['error']}" for r in rows if "error" in r})
    if failed:
        lines += ["", "Failed: " + "; ".join(failed)]
    return "\n".join(lines)


def _reach(curve: list[dict[str, Any]], target: float) -> float | None:
    hits = [p["fit_seconds"] for p in curve if p["rmse"] <= target]
    return min(hits) if hits else None


def reach_table(ours: dict[str, list[dict]], peer_rows: list[dict[str, Any]]) -> str:
    """Seconds until each model first reaches each target RMSE on u1."""
    curves_by = dict(ours)
    for r in peer_rows:
        if r["fold"] == "u1" and r.get("curve"):
            curves_by[f"{r['model']} (peer)"] = r["curve"]
    targets = dict(TARGETS)
    for r in peer_rows:
        if r["fold"] == "u1" and r["model"] in ("fastai_dotbias", "surprise_svd"):
            targets[f"{r['model']} final u1"] = round(r["rmse"], 4)
    names = list(targets)
    lines = ["| model (u1) | " + " | ".join(f"to {targets[n]:.4f} ({n})" for n in names)
             + " | best RMSE |", "|---|" + "---:|" * (len(names) + 1)]
    for label, c in curves_by.items():
        cells = []
        for n in names:
            s = _reach(c, targets[n])
            cells.append("never" if s is None else f"{s:.2f} s")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {min(p['rmse'] for p in c):.4f} |")
    return "\n".join(lines)


def goals(ours: dict[str, list[dict]], peer_rows: list[dict[str, Any]],
          rows: list[dict[str, Any]], speed: dict | None, scale: list | None) -> str:
    """The issue's 'done when' lines with the measured numbers."""
    mf = ours.get("collabkit BiasedMF", [])
    svd = next((r for r in peer_rows if r["fold"] == "u1" and r["model"] == "surprise_svd"),
               None)
    fa = next((r for r in peer_rows if r["fold"] == "u1" and r["model"] == "fastai_dotbias"),
              None)
    t936, t951 = _reach(mf, 0.936), _reach(mf, 0.951)
    plain = ours.get(EPOCHS_ONLY, [])
    p936, p951 = _reach(plain, 0.936), _reach(plain, 0.951)
    svd951 = _reach(svd["curve"], 0.951) if svd and svd.get("curve") else None
    u1 = [r for r in rows if r["model"] == "dot" and r["fold"] == "u1" and "error" not in r]

    def fmt(x: float | None) -> str:
        return "never" if x is None else f"{x:.2f} s"

    out = []
    if u1:
        out.append(f"- `BiasedMF()` defaults on u1: test RMSE {u1[0]['rmse']:.4f} "
                   f"(goal <= 0.930, target < 0.922), fit {u1[0]['fit_seconds']:.2f} s.")
    fa_s = f"{fa['fit_seconds']:.1f} s" if fa else "~30 s (brief)"
    out.append(f"- Reach fastai's 0.936: {fmt(t936)} with the defaults, {fmt(p936)} with "
               f"the epochs alone (`refit_users=False`) (goal <= 1 s, i.e. 30x faster than "
               f"fastai's fit, {fa_s} here).")
    out.append(f"- Reach Surprise SVD's 0.951: {fmt(t951)} with the defaults, {fmt(p951)} "
               f"with the epochs alone (Surprise SVD itself: {fmt(svd951)}).")
    if speed:
        out.append(speed_goal(speed))
    if scale:
        ok = [r for r in scale if "error" not in r]
        if ok:
            big = max(ok, key=lambda r: r["n_ratings"])
            out.append(f"- Scale: {big['n_ratings']:,} ratings trained, scored and recommended "
                       f"with peak RSS {big['peak_gb']:.2f} GB (goal <= 4 GB).")
    return "\n".join(out)


def speed_goal(speed: dict) -> str:
    """The goals' line for the 1M-rating epoch (the first row of speed.py is the default)."""
    r0 = speed["rows"][0]
    line = (f"- One epoch over 1M ratings at k = 64: {r0['epoch_median']:.3f} s wall, "
            f"{r0['cpu_per_epoch']:.3f} s CPU (goal <= 0.15 s on 2 cores)")
    ref = next((r for r in speed["rows"] if r.get("config", "").startswith("torch kernel")
                and r.get("threads") == 1 and "error" not in r), None)
    if ref is not None:
        line += (f"; the torch kernel in the same process: {ref['epoch_median']:.3f} s "
                 f"({ref['epoch_median'] / r0['epoch_median']:.1f}x slower)")
    return line + "."


def speed_only(out_dir: Path) -> int:
    """Rerun speed.py and patch its parts of an earlier full run's README.md and JSON."""
    import speed as speed_mod

    md_path, js_path = out_dir / "README.md", out_dir / "collabkit.json"
    md, js = md_path.read_text(), json.loads(js_path.read_text())
    log("speed: 1M ratings, k = 64")
    speed = speed_mod.run(compile_step=True, split_threads=True)
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = md.split("\n")
    at = [n for n, line in enumerate(lines) if line.startswith("- One epoch over 1M ratings")]
    if len(at) != 1:
        raise SystemExit(f"{md_path}: no single speed line among the goals to replace")
    lines[at[0]] = speed_goal(speed)
    md = "\n".join(lines)
    start = md.find("\n## Speed\n")
    end = md.find("\n## ", start + 1)
    if start < 0:
        raise SystemExit(f"{md_path}: no '## Speed' section to replace")
    section = (f"\n## Speed\n\nRerun alone by `benchmarks/run.py --speed-only` on {date} (the "
               f"other sections are from the full run above).\n\n{speed_mod.markdown(speed)}\n")
    md = md[:start] + section + (md[end:] if end >= 0 else "")
    md_path.write_text(md)
    js["speed"] = speed
    js["speed_rerun"] = {"date": date, "load_average": list(os.getloadavg())}
    js_path.write_text(json.dumps(js, indent=1, default=lambda o: None if isinstance(
        o, float) and not math.isfinite(o) else str(o)))
    print(section)
    return 0


def machine() -> dict[str, Any]:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average": list(os.getloadavg()),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def implicit_feedback(quick: bool, out_dir: Path) -> str | None:
    """Run benchmarks/implicit_peers.py; its verdicts and a link, or None when it cannot run."""
    import implicit_peers

    out = out_dir / ("implicit-peers-quick" if quick else "implicit-peers")
    log("implicit feedback: collabkit vs the implicit library" + (" (quick)" if quick else ""))
    try:
        implicit_peers.main(["--out", str(out)] + (["--quick"] if quick else []),
                            caller="make bench (benchmarks/run.py)")
    except SystemExit as e:  # no .bench-venv, or the peer side failed: say so, go on
        log(f"implicit_peers.py did not run: {e}")
        return f"Not measured: {e}"
    rep = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    return "\n".join([f"Tables, grids and trials: [{out.name}.md]({out.name}.md).", ""] + [
        f"- {name}: {implicit_peers.verdict(res)}." for name, res in rep["datasets"].items()])


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="u1 only; scale at 1M only")
    ap.add_argument("--folds", nargs="+", default=None)
    ap.add_argument("--peers", choices=("auto", "run", "json", "skip"), default="auto")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true",
                    help="rerun only speed.py and patch its parts of the last results")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--no-serve", action="store_true", help="skip benchmarks/serve_load.py")
    ap.add_argument("--no-distributed", action="store_true",
                    help="skip benchmarks/distributed.py")
    ap.add_argument("--no-implicit", action="store_true",
                    help="skip benchmarks/implicit_peers.py (implicit feedback vs `implicit`)")
    ap.add_argument("--scale-sizes", nargs="+", type=float, default=None)
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.speed_only:
        return speed_only(args.out_dir)
    folds = tuple(args.folds or (("u1",) if args.quick else FOLDS))
    t_all = time.perf_counter()
    info = machine()
    configs, failed = discover()
    log(f"models: {', '.join(configs)}" + (f"; not importable: {failed}" if failed else ""))
    rows = bench_ml100k(configs, folds)
    ours = curves()
    peer_rep, peer_src = peers(args.peers, folds)
    peer_rows = _peer_rows(peer_rep)
    speed = scale = None
    if not args.no_speed:
        import speed as speed_mod

        log("speed: 1M ratings, k = 64")
        speed = speed_mod.run(compile_step=True, split_threads=True)
    if not args.no_scale:
        import scale as scale_mod

        sizes = args.scale_sizes or ([1e6] if args.quick else list(scale_mod.SIZES))
        scale = scale_mod.run(tuple(int(s) for s in sizes))
    serve = None
    if not args.no_serve:
        import serve_load

        log("service: 32 clients x 30 s per dataset, 10 kill -9 rounds")
        serve = serve_load.run(duration=10.0 if args.quick else 30.0,
                               crash_rounds=3 if args.quick else 10)
    dist_res = None
    if not args.no_distributed:
        import distributed as dist_mod

        log("distributed: replicate tier at world 1, 2, 4; planner at 1B ratings")
        dist_res = dist_mod.run(quick=args.quick)
        dist_mod.main_write(dist_res, args.out_dir)
    md = ["(the header, written last: its minutes and end load cover every part)",
          "## Done-when of issue 4", goals(ours, peer_rows, rows, speed, scale),
          f"## MovieLens 100k, {', '.join(folds)} (mean ± sd over folds)",
          f"Peers: {peer_src}.", accuracy_table(rows + peer_rows, folds),
          "## Time to reach an RMSE on u1",
          "collabkit: refit from scratch with 1..6 epochs (best wall clock of 3 fits each); "
          "Surprise SVD: refit with 1..20 epochs; fastai: test RMSE after each epoch.",
          reach_table(ours, peer_rows)]
    if speed:
        import speed as speed_mod

        md += ["## Speed", speed_mod.markdown(speed)]
    if scale:
        import scale as scale_mod

        md += ["## Scale (synthetic, ML-25M-shaped)", scale_mod.markdown(scale)]
    import cli_startup

    log("CLI start-up: --version, --help, datasets commands")
    startup = cli_startup.run()
    md += ["## CLI start-up (issue 8: --version and --help under 0.5 s)",
           cli_startup.markdown(startup)]
    if serve:
        import serve_load

        md += ["## Service (issue 10): load and kill -9", serve_load.markdown(serve)]
    if dist_res:
        import distributed as dist_mod

        md += ["## Distributed training (issue 15)", dist_mod.markdown(dist_res)]
    implicit = None if args.no_implicit else implicit_feedback(args.quick, args.out_dir)
    if implicit is not None:
        md += ["## Implicit feedback (issue 13): collabkit beside `implicit`", implicit]
    md[0] = (f"# collabkit benchmarks\n\nWritten by `benchmarks/run.py` on {info['date']} in "
             f"{(time.perf_counter() - t_all) / 60:.0f} min. Machine: {info['cpu']}, "
             f"{info['cores']} cores (shared with other work: load average "
             f"{info['load_average'][0]:.1f} at the start, "
             f"{os.getloadavg()[0]:.1f} at the end), torch {info['torch']}, Python "
             f"{info['python']}. collabkit trains with one intra-op thread.")
    if failed:
        md += ["## Model modules that did not import", "\n".join(f"- {f}" for f in failed)]
    text = "\n\n".join(md) + "\n"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "README.md").write_text(text)
    (args.out_dir / "collabkit.json").write_text(json.dumps(
        {"machine": info, "folds": folds, "ml100k": rows, "curves": ours,
         "peers_source": peer_src, "speed": speed, "scale": scale, "cli_startup": startup,
         "serve": serve, "distributed": dist_res}, indent=1,
        default=lambda o: None if isinstance(o, float) and not math.isfinite(o) else str(o)))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
