"""Peer libraries on the MovieLens 100k folds: the peers' half of `make bench`.

Run with the peers' venv (see benchmarks/peers_env.sh), not with collabkit's own:

    .bench-venv/bin/python benchmarks/peers.py --folds u1 u2 u3 u4 u5 \
        --out benchmarks/results/peers-ml100k.json

For each fold uN it trains on uN.base, tests on uN.test and records test RMSE and MAE, the wall
clock of the fit alone and of the prediction of uN.test alone (time.perf_counter), for:

    surprise_baseline  Surprise BaselineOnly, defaults (ALS, 10 epochs)
    surprise_svd       Surprise SVD, defaults (100 factors, 20 epochs), random_state fixed
    surprise_svdpp     Surprise SVDpp, defaults (20 factors, 20 epochs), random_state fixed
    fastai_dotbias     fastai collab_learner(n_factors=50, y_range=(0, 5.5)), fast.ai book ch. 8
    fastai_embnn       fastai collab_learner(use_nn=True, layers=[100, 50], y_range=(0, 5.5))

fastai trains as in the book: CollabDataLoaders.from_df(uN.base, bs=64) holds out its own random
20% for validation (valid_pct=0.2, seed fixed), so it fits on 80% of uN.base, then
fit_one_cycle(5, 5e-3, wd=0.1). Test pairs whose user or item is not in fastai's training vocab
get the mean rating of uN.base; how many is recorded.

Learning curves ("how long until the peer reaches RMSE X"):
  * fastai: after every epoch a callback scores uN.test; its own time is subtracted, so each
    point is (epoch, fit seconds so far, test RMSE).
  * Surprise SVD: refit from scratch with n_epochs = 1..N (same random_state); each point is
    (epochs, fit seconds of that run, test RMSE).

Only the standard library, numpy, pandas, Surprise, torch and fastai are used: the peers' venv
does not have collabkit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

SURPRISE_MODELS = ("surprise_baseline", "surprise_svd", "surprise_svdpp")
FASTAI_MODELS = ("fastai_dotbias", "fastai_embnn")
ALL_MODELS = SURPRISE_MODELS + FASTAI_MODELS
COLUMNS = ["user", "item", "rating", "timestamp"]


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def default_data_dir() -> Path:
    env = os.environ.get("COLLABKIT_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def resolve_ml100k(data: Path) -> Path:
    """Accept the datasets folder (holding ml-100k/) or the ml-100k folder itself."""
    for cand in (data / "ml-100k", data):
        if (cand / "u1.base").is_file():
            return cand
    raise SystemExit(f"no ml-100k (u1.base ...) under {data}; set --data or COLLABKIT_DATA")


def read_split(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", names=COLUMNS, dtype="int64")
    return df[["user", "item", "rating"]]


def errors(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d))), float(np.mean(np.abs(d)))


def unseen_counts(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    u_known = test["user"].isin(set(train["user"].unique())).to_numpy()
    i_known = test["item"].isin(set(train["item"].unique())).to_numpy()
    return {
        "test_pairs_unseen_user": int((~u_known).sum()),
        "test_pairs_unseen_item": int((~i_known).sum()),
        "test_pairs_unseen_any": int((~(u_known & i_known)).sum()),
    }


# ----------------------------------------------------------------------------- Surprise


def surprise_sets(train: pd.DataFrame, test: pd.DataFrame):
    from surprise import Dataset, Reader

    reader = Reader(rating_scale=(1, 5))
    trainset = Dataset.load_from_df(train[["user", "item", "rating"]], reader).build_full_trainset()
    testset = list(
        zip(
            test["user"].tolist(),
            test["item"].tolist(),
            test["rating"].astype(float).tolist(),
            strict=True,
        )
    )
    return trainset, testset


def make_surprise(name: str, seed: int, **overrides):
    from surprise import SVD, BaselineOnly, SVDpp

    if name == "surprise_baseline":
        return BaselineOnly(verbose=False), {"algo": "BaselineOnly", "params": "defaults"}
    if name == "surprise_svd":
        params = {"random_state": seed, **overrides}
        return SVD(**params), {"algo": "SVD", "params": params}
    if name == "surprise_svdpp":
        params = {"random_state": seed, **overrides}
        return SVDpp(**params), {"algo": "SVDpp", "params": params}
    raise ValueError(name)


def fit_predict_surprise(algo, trainset, testset) -> dict:
    c0 = time.process_time()
    t0 = time.perf_counter()
    algo.fit(trainset)
    fit_s = time.perf_counter() - t0
    fit_cpu = time.process_time() - c0
    t0 = time.perf_counter()
    preds = algo.test(testset)
    pred_s = time.perf_counter() - t0
    y = np.array([p.r_ui for p in preds])
    yhat = np.array([p.est for p in preds])
    rmse, mae = errors(y, yhat)
    impossible = sum(bool(p.details.get("was_impossible", False)) for p in preds)
    return {
        "rmse": rmse,
        "mae": mae,
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu,
        "predict_seconds": pred_s,
        "predictions_impossible": int(impossible),
    }


def run_surprise(name, fold, train, test, seed, curve_epochs) -> dict:
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    trainset, testset = surprise_sets(train, test)
    prep_s = time.perf_counter() - t0
    algo, desc = make_surprise(name, seed)
    res = fit_predict_surprise(algo, trainset, testset)
    out = {"model": name, "fold": fold, "library": "surprise", **desc, **res}
    out["prepare_seconds"] = prep_s  # Dataset.load_from_df + build_full_trainset, not in fit
    out["n_train"] = len(train)
    out["n_test"] = len(test)
    out.update(unseen_counts(train, test))
    out["loadavg_1min_before_after"] = [load_before[0], os.getloadavg()[0]]
    log(
        f"{fold} {name}: rmse {res['rmse']:.4f} mae {res['mae']:.4f} "
        f"fit {res['fit_seconds']:.2f}s predict {res['predict_seconds']:.2f}s"
    )
    if name == "surprise_svd" and curve_epochs > 0:
        curve = []
        for n in range(1, curve_epochs + 1):
            a, _ = make_surprise(name, seed, n_epochs=n)
            r = fit_predict_surprise(a, trainset, testset)
            curve.append(
                {"epochs": n, "fit_seconds": r["fit_seconds"], "rmse": r["rmse"], "mae": r["mae"]}
            )
        out["curve"] = curve
        out["curve_method"] = "refit from scratch with n_epochs=1..N, same random_state"
        best = min(curve, key=lambda p: p["rmse"])
        log(f"{fold} {name} curve: best rmse {best['rmse']:.4f} at {best['epochs']} epochs")
    return out


# ----------------------------------------------------------------------------- fastai


def run_fastai(name, fold, train, test, seed, epochs, lr, wd, bs, valid_pct) -> dict:
    import torch
    from fastai.callback.core import Callback
    from fastai.collab import CollabDataLoaders, collab_learner
    from fastai.learner import Recorder
    from fastai.torch_core import set_seed

    train_mean = float(train["rating"].mean())
    set_seed(seed, reproducible=True)
    t_prep = time.perf_counter()
    dls = CollabDataLoaders.from_df(
        train[["user", "item", "rating"]],
        user_name="user",
        item_name="item",
        rating_name="rating",
        valid_pct=valid_pct,
        seed=seed,
        bs=bs,
    )
    if name == "fastai_dotbias":
        params = {"n_factors": 50, "y_range": (0, 5.5)}
    else:
        params = {"use_nn": True, "layers": [100, 50], "y_range": (0, 5.5)}
    learn = collab_learner(dls, **params)
    prep_s = time.perf_counter() - t_prep  # from_df + collab_learner, not in fit_seconds

    # Map the test ids through fastai's vocab (built on its 80% training split).
    u_o2i = dls.classes["user"].o2i
    i_o2i = dls.classes["item"].o2i
    u_idx = np.array([u_o2i.get(u, 0) for u in test["user"].tolist()], dtype=np.int64)
    i_idx = np.array([i_o2i.get(i, 0) for i in test["item"].tolist()], dtype=np.int64)
    known = (u_idx > 0) & (i_idx > 0)
    x_test = torch.from_numpy(np.stack([u_idx[known], i_idx[known]], axis=1))
    y_test = test["rating"].to_numpy(dtype=np.float64)

    def predict() -> np.ndarray:
        model = learn.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            out = model(x_test).reshape(-1).double().numpy()
        if was_training:
            model.train()
        yhat = np.full(len(test), train_mean, dtype=np.float64)
        yhat[known] = out
        return yhat

    clock = {"start": 0.0, "eval": 0.0}
    curve: list[dict] = []

    class TestEachEpoch(Callback):
        "Scores the test set after each epoch; its own time is kept out of the fit time."

        order = Recorder.order + 1

        def after_epoch(self):
            t0 = time.perf_counter()
            elapsed = t0 - clock["start"] - clock["eval"]
            rmse, mae = errors(y_test, predict())
            rec = self.learn.recorder
            vals = rec.values[-1] if rec.values else []
            point = {"epoch": self.epoch + 1, "fit_seconds": elapsed, "rmse": rmse, "mae": mae}
            if len(vals) >= 2:
                point["train_loss"] = float(vals[0])
                point["valid_loss"] = float(vals[1])
            curve.append(point)
            clock["eval"] += time.perf_counter() - t0

    cb = TestEachEpoch()
    load_before = os.getloadavg()
    with learn.no_bar(), learn.no_logging():
        c0 = time.process_time()
        clock["start"] = time.perf_counter()
        learn.fit_one_cycle(epochs, lr, wd=wd, cbs=[cb])
        fit_s = time.perf_counter() - clock["start"] - clock["eval"]
        fit_cpu = time.process_time() - c0  # includes the (small) test evaluations
    load_after = os.getloadavg()

    t0 = time.perf_counter()
    yhat = predict()
    pred_s = time.perf_counter() - t0
    rmse, mae = errors(y_test, yhat)
    n_train_fastai = len(dls.train_ds)
    out = {
        "model": name,
        "fold": fold,
        "library": "fastai",
        "algo": "collab_learner " + ("EmbeddingNN" if params.get("use_nn") else "EmbeddingDotBias"),
        "params": {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
            "bs": bs,
            "valid_pct": valid_pct,
            "seed": seed,
            "fit_one_cycle": {"epochs": epochs, "lr_max": lr, "wd": wd},
            "num_workers": int(dls.train.fake_l.num_workers),
        },
        "rmse": rmse,
        "mae": mae,
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu,
        "predict_seconds": pred_s,
        "prepare_seconds": prep_s,
        "eval_seconds_excluded": clock["eval"],
        "loadavg_1min_before_after": [load_before[0], load_after[0]],
        "n_train": len(train),
        "n_train_fit": int(n_train_fastai),
        "n_valid_fastai": int(len(dls.valid_ds)),
        "n_test": len(test),
        "test_pairs_fallback_mean": int((~known).sum()),
        "fallback_value": train_mean,
        "final_valid_loss": curve[-1].get("valid_loss") if curve else None,
        "curve": curve,
        "curve_method": "test RMSE after each epoch; evaluation time subtracted from fit_seconds",
    }
    out.update(unseen_counts(train, test))
    log(
        f"{fold} {name}: rmse {rmse:.4f} mae {mae:.4f} fit {fit_s:.1f}s (cpu {fit_cpu:.0f}s) "
        f"predict {pred_s:.3f}s "
        f"(fallback {out['test_pairs_fallback_mean']} pairs; per-epoch rmse "
        + " ".join(f"{p['rmse']:.3f}" for p in curve)
        + ")"
    )
    return out


# ----------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(models) -> dict:
    names = ["numpy", "pandas", "scipy"]
    if any(m in SURPRISE_MODELS for m in models):
        names.append("scikit-surprise")
    if any(m in FASTAI_MODELS for m in models):
        names += ["torch", "fastai", "fastcore", "fastprogress", "fasttransform", "scikit-learn"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def summarize(results: list[dict]) -> dict:
    summary: dict = {}
    for name in ALL_MODELS:
        rows = [r for r in results if r["model"] == name]
        if not rows:
            continue
        s: dict = {"folds": [r["fold"] for r in rows]}
        for key in ("rmse", "mae", "fit_seconds", "predict_seconds"):
            vals = np.array([r[key] for r in rows], dtype=np.float64)
            s[f"{key}_mean"] = float(vals.mean())
            s[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        summary[name] = s
    return summary


def print_table(summary: dict) -> None:
    print(f"{'model':<20}{'folds':>6}{'RMSE':>9}{'MAE':>9}{'fit s':>9}{'pred s':>9}")
    for name, s in summary.items():
        print(
            f"{name:<20}{len(s['folds']):>6}{s['rmse_mean']:>9.4f}{s['mae_mean']:>9.4f}"
            f"{s['fit_seconds_mean']:>9.2f}{s['predict_seconds_mean']:>9.3f}"
        )


def clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="datasets dir or ml-100k dir")
    ap.add_argument("--folds", nargs="+", default=["u1"], help="u1..u5 (default: u1)")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--only", default=None, help="comma-separated: " + ",".join(ALL_MODELS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch.set_num_threads (default 2; use 1 on a busy machine, see README)",
    )
    ap.add_argument("--svd-curve-epochs", type=int, default=30, help="0 disables the SVD curve")
    ap.add_argument("--fastai-epochs", type=int, default=5)
    args = ap.parse_args(argv)

    models = list(ALL_MODELS)
    if args.only:
        models = [m.strip() for m in args.only.split(",") if m.strip()]
        bad = [m for m in models if m not in ALL_MODELS]
        if bad:
            ap.error(f"unknown model(s) {bad}; choose from {','.join(ALL_MODELS)}")
    folds = args.folds
    for f in folds:
        if f not in {"u1", "u2", "u3", "u4", "u5"}:
            ap.error(f"unknown fold {f!r}; folds are u1..u5")
    ml = resolve_ml100k(args.data or default_data_dir())

    if any(m in FASTAI_MODELS for m in models):
        import torch

        torch.set_num_threads(args.threads)

    results = []
    t_all = time.perf_counter()
    for fold in folds:
        train = read_split(ml / f"{fold}.base")
        test = read_split(ml / f"{fold}.test")
        for name in models:
            if name in SURPRISE_MODELS:
                results.append(
                    run_surprise(name, fold, train, test, args.seed, args.svd_curve_epochs)
                )
            else:
                results.append(
                    run_fastai(
                        name,
                        fold,
                        train,
                        test,
                        args.seed,
                        epochs=args.fastai_epochs,
                        lr=5e-3,
                        wd=0.1,
                        bs=64,
                        valid_pct=0.2,
                    )
                )

    threads = None
    if any(m in FASTAI_MODELS for m in models):
        import torch

        threads = torch.get_num_threads()
    report = {
        "benchmark": "peers on MovieLens 100k u1..u5 splits (train uN.base, test uN.test)",
        "dataset": "ml-100k",
        "data_dir": str(ml),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "benchmarks/peers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "torch_threads": threads,
            "platform": platform.platform(),
            "env": {
                k: os.environ.get(k)
                for k in (
                    "OMP_NUM_THREADS",
                    "OMP_WAIT_POLICY",
                    "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS",
                    "OPENBLAS_CORETYPE",
                )
                if os.environ.get(k) is not None
            },
            "loadavg_at_end": list(os.getloadavg()),
        },
        "versions": versions(models),
        "seed": args.seed,
        "models": models,
        "folds": folds,
        "total_seconds": time.perf_counter() - t_all,
        "summary": summarize(results),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(clean(report), indent=1) + "\n")
    tmp.replace(args.out)
    print_table(report["summary"])
    log(f"wrote {args.out} in {report['total_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
