"""``collabkit``: train, evaluate, predict and recommend from the shell.

Every command takes ``--json`` and then prints one JSON object on stdout. Errors print one
line on stderr and exit non-zero, never a traceback (set ``COLLABKIT_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

import click

from collabkit._version import __version__
from collabkit.cli import output as out
from collabkit.cli.options import (
    _load_data,
    _parse_params,
    _range,
    _split,
    common,
    data_options,
)
from collabkit.errors import CollabkitError, ConfigError, DataWarning

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(version=__version__, prog_name="collabkit")
def cli() -> None:
    """Collaborative filtering: train on ratings, evaluate honestly, recommend."""


# ---------------------------------------------------------------------------- datasets
@cli.group()
def datasets() -> None:
    """List, download or locate MovieLens datasets."""


@datasets.command("list")
@common
def datasets_list(as_json: bool, quiet: bool) -> None:
    """Known datasets, where each is read from, and whether its license allows passing it on."""
    from collabkit.data.movielens import list_datasets

    rows = [{"name": d.name, "available": str(d.path) if d.path else None,
             "redistributable": d.redistributable, "license": d.license, "url": d.url}
            for d in list_datasets()]
    if as_json:
        out.emit_json({"datasets": rows})
    else:  # long paths and URLs fold onto more lines: nothing is cut at the console's width
        out.stdout.print(out.folded_table(
            [{"name": r["name"],
              "available": r["available"] or "(not here: downloads on first use)",
              "redistributable": "yes" if r["redistributable"] else "no", "url": r["url"]}
             for r in rows], "MovieLens datasets"))


@datasets.command("download")
@click.argument("name")
@common
def datasets_download(name: str, as_json: bool, quiet: bool) -> None:
    """Download NAME into the cache (checked against its SHA-256)."""
    from collabkit.data.movielens import download

    path = download(name, progress=not (as_json or quiet))
    out.emit_json({"name": name, "path": str(path)}) if as_json else out.stdout.print(str(path))


@datasets.command("path")
@click.argument("name")
@common
def datasets_path(name: str, as_json: bool, quiet: bool) -> None:
    """Print the folder NAME is read from; exit 1 when it is not on this machine.

    When it is not, the folder it would be downloaded into is printed instead (so
    `collabkit datasets path NAME` always names a folder), with a note on stderr.
    """
    from collabkit.data.movielens import cache_path, dataset_path, incomplete_copy

    path = dataset_path(name)
    found = path is not None
    shown = str(path if found else cache_path(name))
    if as_json:
        out.emit_json({"name": name, "path": shown, "available": found})
    else:
        out.stdout.print(shown, soft_wrap=True)
    if not found:
        if not as_json:
            out.stderr.print(incomplete_copy(name) or f"{name} is not on this machine; "
                             f"`collabkit datasets download {name}` puts it in the folder above",
                             soft_wrap=True)
        raise click.exceptions.Exit(1)


# ---------------------------------------------------------------------------- train
@cli.command()
@data_options
@click.option("--split", "how", default="random", show_default=True,
              help="random | user | temporal | last | kfold | none | ml-100k's u1..u5, ua, ub.")
@click.option("--folds", default=5, show_default=True, help="Folds for --split kfold.")
@click.option("--test-frac", default=0.2, show_default=True,
              help="Test share for random/user/temporal.")
@click.option("--valid-frac", default=0.1, show_default=True,
              help="Share of the training rows held out for validation.")
@click.option("--model", "kind", default="dot", show_default=True, help="Model kind.")
@click.option("--factors", type=int, default=None, help="Latent factors (default 50).")
@click.option("--epochs", type=int, default=None, help="Epochs (default 5).")
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option("--wd", type=float, default=None, help="Weight decay.")
@click.option("--batch-size", type=int, default=None, help="Batch size.")
@click.option("--y-range", default=None, metavar="LOW,HIGH", help="Sigmoid range, or 'none'.")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE",
              help="Any other model parameter, e.g. --param layers=100,50 (repeatable).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--out", "out_dir", default=None, metavar="DIR",
              help="Model folder (default runs/<data>-<model>).")
@common
def train(how: str, folds: int, test_frac: float, valid_frac: float, kind: str, factors: int | None,
          epochs: int | None, lr: float | None, wd: float | None, batch_size: int | None,
          y_range: str | None, extra: tuple[str, ...], seed: int, out_dir: str | None,
          as_json: bool, quiet: bool, **data_kw: Any) -> None:
    """Train a model, score it on the held-out split beside the baselines, save it."""
    from collabkit.metrics.evaluate import evaluate

    show = not (as_json or quiet)
    params: dict[str, Any] = {"random_state": seed, "valid_frac": valid_frac}
    for name, v in (("n_factors", factors), ("epochs", epochs), ("lr", lr), ("wd", wd),
                    ("batch_size", batch_size)):
        if v is not None:
            params[name] = v
    if y_range is not None:  # 'none': no sigmoid, a linear model
        params["y_range"] = None if y_range.lower() == "none" else _range(y_range)
    params.update(_parse_params(extra))
    name = data_kw.get("dataset") or os.path.splitext(os.path.basename(data_kw["ratings"] or ""))[0]
    out_dir = out_dir or os.path.join("runs", f"{name}-{kind}")
    _check_out(out_dir, folds if how == "kfold" else None)  # before the training run, not after
    if how == "kfold":
        _train_kfold(data_kw, kind, params, folds, seed, out_dir, as_json, quiet)
        return
    train_data, test_data = _split(data_kw, how, test_frac, seed, show)
    model, fit_s = _fit_with_bar(train_data, kind, params, show)
    path = _save(model, out_dir)
    report = evaluate(model, test_data) if test_data is not None else None
    result = {"model": path, "kind": kind, "split": how, "n_train": len(train_data),
              "n_test": 0 if test_data is None else len(test_data),
              "fit_seconds": round(fit_s, 3), "epochs": len(getattr(model, "history_", [])),
              "valid_rmse": _last_valid(model), "seed": seed}
    if report is not None:
        result.update(report.to_dict())
    if as_json:
        out.emit_json(result)
        return
    if not quiet:
        _print_train(result, report, train_data, test_data, fit_s)


def _check_out(out_dir: str, folds: int | None) -> None:
    """Refuse an --out that a save must not replace (a file, a folder of other things, ...)."""
    from collabkit._modelfolder import check_save_target

    if folds is None:
        check_save_target(out_dir, arg="--out")
    else:  # the models go to OUT/fold-N
        for n in range(1, folds + 1):
            check_save_target(os.path.join(out_dir, f"fold-{n}"), arg="--out")


def _save(model: Any, path: str) -> str:
    from collabkit.io import save_model

    return save_model(model, path, arg="--out")


def _fit_with_bar(data: Any, kind: str, params: dict[str, Any], show: bool) -> tuple[Any, float]:
    from collabkit.api import fit

    passes = kind == "dot" and params.get("refit_users", True) is not False
    then = "closed-form passes" if passes else None
    with out.EpochProgress(int(params.get("epochs", 5)), show, then=then) as bar:
        t0 = time.perf_counter()
        model = fit(data, kind, **_accepted(kind, {**params, "callback": bar}))
        fit_s = time.perf_counter() - t0
    if hasattr(model, "callback"):
        model.callback = None
    return model, fit_s


def _train_kfold(data_kw: dict[str, Any], kind: str, params: dict[str, Any], folds: int,
                 seed: int, out_dir: str, as_json: bool, quiet: bool) -> None:
    """k-fold cross-validation: one model per fold, saved as OUT/fold-N; mean ± sd."""
    import pandas as pd

    from collabkit.data.split import kfold
    from collabkit.metrics.evaluate import evaluate

    show = not (as_json or quiet)
    data = _load_data(data_kw, show)
    rows, paths = [], []
    for n, sp in enumerate(kfold(len(data), k=folds, seed=seed), start=1):
        model, fit_s = _fit_with_bar(data.take(sp.train), kind, params, show)
        report = evaluate(model, data.take(sp.test))
        paths.append(_save(model, os.path.join(out_dir, f"fold-{n}")))
        rows.append({"fold": n, "rmse": report.rmse, "mae": report.mae,
                     "bias_rmse": float(report.table["rmse"].iloc[2]),
                     "mean_rmse": float(report.table["rmse"].iloc[1]), "fit_seconds": fit_s})
    df = pd.DataFrame(rows)
    summary = {"kind": kind, "split": f"kfold({folds})", "models": paths,
               "folds": rows, "rmse": float(df["rmse"].mean()), "rmse_sd": float(df["rmse"].std()),
               "mae": float(df["mae"].mean()), "fit_seconds": float(df["fit_seconds"].sum()),
               "baselines": {"global mean": {"rmse": float(df["mean_rmse"].mean())},
                             "user+item bias": {"rmse": float(df["bias_rmse"].mean())}}}
    if as_json:
        out.emit_json(summary)
    elif not quiet:
        out.stdout.print(out.frame_table(df, f"{folds}-fold cross-validation of {kind}"))
        out.stdout.print(f"mean RMSE {summary['rmse']:.4f} ± {summary['rmse_sd']:.4f} "
                         f"(bias baseline {summary['baselines']['user+item bias']['rmse']:.4f}); "
                         f"models in {out_dir}")


def _accepted(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Drop generic options a model kind does not take (e.g. epochs for a closed-form model)."""
    from collabkit.models import registry

    cls = registry.find(kind)
    if cls is None:
        return params
    names = set(cls._param_names())
    unknown = [k for k in params if k not in names and k not in
               ("random_state", "valid_frac", "callback", "epochs", "n_factors", "lr", "wd",
                "batch_size", "y_range")]
    if unknown:
        raise ConfigError(f"model {kind!r} has no parameter {unknown[0]!r}; its parameters "
                          f"are {sorted(names)}")
    return {k: v for k, v in params.items() if k in names}


def _last_valid(model: Any) -> float | None:
    """Validation RMSE of the final model (after BiasedMF's user pass), else the last epoch's."""
    final = getattr(model, "valid_rmse_", None)
    if final is not None:
        return final
    hist = getattr(model, "history_", None)
    return hist[-1].get("valid_rmse") if hist else None


def _print_train(result: dict[str, Any], report: Any, train_data: Any, test_data: Any,
                 fit_s: float) -> None:
    o = out.stdout
    o.print(f"trained [bold]{result['kind']}[/] on {train_data!r} in {fit_s:.1f} s"
            + (f"; validation RMSE {result['valid_rmse']:.4f}" if result["valid_rmse"] else ""))
    if report is not None:
        o.print(out.metrics_table(report.table, f"test split '{result['split']}': "
                                  f"{report.n} held-out ratings"))
        if report.n_fallback:
            o.print(f"[yellow]{report.n_fallback} test ratings had a user or item unseen in "
                    f"training ({report.n_unknown_users} users, {report.n_unknown_items} items); "
                    "the bias baseline scored them.[/]")
    o.print(f"model saved to [bold]{result['model']}[/]")


# ---------------------------------------------------------------------------- evaluate
@cli.command("evaluate")
@click.argument("model_dir", metavar="MODEL")
@data_options
@click.option("--split", "how", default=None,
              help="Score on this split's test part (u1..u5/ua/ub, or random/user/... with "
                   "--seed); default: all rows of --ratings/--dataset.")
@click.option("--test-frac", default=0.2, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@common
def evaluate_cmd(model_dir: str, how: str | None, test_frac: float, seed: int, as_json: bool,
                 quiet: bool, **data_kw: Any) -> None:
    """Score a saved MODEL on held-out ratings, beside the baselines."""
    from collabkit.io import load_model
    from collabkit.metrics.evaluate import evaluate

    model = load_model(model_dir)
    if how is None:
        test = _load_data(data_kw, not (as_json or quiet))
    else:
        _, test = _split(data_kw, how, test_frac, seed, not (as_json or quiet))
        if test is None:
            raise ConfigError("--split none leaves nothing to evaluate on")
    report = evaluate(model, test)
    result = {"model": model_dir, "kind": model.kind, "split": how, **report.to_dict()}
    if as_json:
        out.emit_json(result)
    elif not quiet:
        out.stdout.print(out.metrics_table(report.table, f"{report.n} held-out ratings"))
        if report.n_fallback:
            out.stdout.print(f"{report.n_fallback} ratings fell back to the bias baseline "
                             "(user or item unseen in training)")


# ---------------------------------------------------------------------------- predict
@cli.command()
@click.argument("model_dir", metavar="MODEL")
@click.argument("pairs", nargs=-1, metavar="USER ITEM [USER ITEM ...]")
@click.option("--raw", is_flag=True,
              help="The model's raw output, not clipped to the training rating range.")
@common
def predict(model_dir: str, pairs: tuple[str, ...], raw: bool, as_json: bool,
            quiet: bool) -> None:
    """Predict ratings for (USER, ITEM) pairs of raw ids (clipped to the rating range)."""
    from collabkit.io import load_model

    if not pairs or len(pairs) % 2:
        raise ConfigError("give USER ITEM pairs, e.g. `collabkit predict MODEL 1 31 1 1029`")
    model = load_model(model_dir)
    users = [_raw_id(model.user_vocab_, p) for p in pairs[0::2]]
    items = [_raw_id(model.item_vocab_, p) for p in pairs[1::2]]
    df = model.predict(users, items, clip=not raw)
    if as_json:
        out.emit_json({"model": model_dir, "predictions": df.to_dict(orient="records")})
    else:
        out.stdout.print(out.frame_table(df, "predicted ratings (fallback: unseen id, "
                                         "baseline answered)"))


def _raw_id(vocab: Any, text: str) -> Any:
    """CLI ids arrive as text; use an int when the model's ids are ints."""
    if vocab.all_ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            return text
    return text


# ---------------------------------------------------------------------------- recommend
@cli.command()
@click.argument("model_dir", metavar="MODEL")
@click.argument("users", nargs=-1, metavar="USER [USER ...]")
@click.option("-n", "n", default=10, show_default=True, help="Items per user.")
@click.option("--include-seen", is_flag=True, help="Also recommend items the user rated.")
@click.option("--raw", is_flag=True,
              help="Show raw scores, not clipped to the training rating range.")
@click.option("--rate", "rates", multiple=True, metavar="ITEM=RATING",
              help="A new user's rating (repeatable): recommend without retraining.")
@click.option("--genres", default=None, metavar="G1,G2",
              help="A new user's liked genres, e.g. Sci-Fi,Comedy.")
@common
def recommend(model_dir: str, users: tuple[str, ...], n: int, include_seen: bool, raw: bool,
              rates: tuple[str, ...], genres: str | None, as_json: bool, quiet: bool) -> None:
    """Top-N items for each USER (raw ids), with titles when known.

    For a user the model never saw, give no USER and their ratings with --rate (or
    --genres): they are folded into the model in milliseconds, with no retraining.
    """
    from collabkit.io import load_model

    if rates or genres:
        from collabkit.cli.explore import recommend_cold

        if users:
            raise ConfigError("give either USER ids or --rate/--genres for a new user, not both")
        recommend_cold(model_dir, rates, genres, n, as_json, quiet)
        return
    if not users:
        raise ConfigError("give at least one USER id, e.g. `collabkit recommend MODEL 1`")
    model = load_model(model_dir)
    ids = [_raw_id(model.user_vocab_, u) for u in users]
    df = model.recommend(ids, n=n, exclude_seen=not include_seen, clip=not raw)
    if as_json:
        out.emit_json({"model": model_dir, "recommendations": df.to_dict(orient="records")})
        return
    for u in ids:
        part = df[df["user"] == u].drop(columns=["user"])
        tier = part["tier"].iloc[0] if len(part) else "model"
        note = "" if tier == "model" else f" (unknown user: {tier} ranking)"
        out.stdout.print(out.frame_table(part.drop(columns=["tier"]),
                                         f"top {n} for user {u}{note}"))


# ---------------------------------------------------------------------------- serve
@cli.command()
@click.argument("model_dir", metavar="MODEL")
@click.option("--db", default=None, metavar="PATH",
              help="SQLite feedback database (default: MODEL.feedback.sqlite3 beside MODEL).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Processes; SIGHUP reloads the model without failing requests at 1.")
@click.option("--cache-size", default=4096, show_default=True, type=int,
              help="Recommendation lists kept in memory (never stale); 0 turns it off.")
@click.option("--min-personal", default=5, show_default=True, type=int,
              help="Ratings a new visitor needs for personal (fold-in) recommendations.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(model_dir: str, db: str | None, host: str, port: int, workers: int,
          cache_size: int, min_personal: int, log_level: str) -> None:
    """Serve MODEL over HTTP (JSON under /v1, docs at /docs), storing feedback in SQLite.

    The app key is read from COLLABKIT_API_KEY (never a flag: flags show in `ps`).
    """
    try:
        from collabkit.serve.server import run
    except ImportError as e:
        raise ConfigError(f"collabkit serve needs the serve extra ({e.name} is missing); "
                          "install it with: pip install 'collabkit[serve]'") from None
    run(model_dir, db=db, host=host, port=port, workers=workers, cache_size=cache_size,
        min_personal=min_personal, log_level=log_level)


# ---------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to one stderr line and an exit code.

    Warnings print as one ``warning: ...`` line each on stderr; collabkit's own
    (:class:`~collabkit.errors.DataWarning`) are also listed under ``"warnings"`` in ``--json``.
    """
    out.warnings_seen.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)  # every run reports its own warnings
        warnings.showwarning = out.show_warning
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="collabkit", standalone_mode=False)
        if isinstance(code, int):  # click.exceptions.Exit(n) raised by a command
            return code
    except click.exceptions.Abort:
        out.stderr.print("aborted")
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except CollabkitError as e:
        if os.environ.get("COLLABKIT_DEBUG"):
            raise
        print(f"error: {out.cli_message(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, with how to get details
        if os.environ.get("COLLABKIT_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e} (set COLLABKIT_DEBUG=1 for a traceback "
              "and please report it)", file=sys.stderr)
        return 70
    return 0


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())
