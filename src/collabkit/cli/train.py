"""``collabkit train``: fit a model kind on a split (or k folds), score it beside the
baselines, save it.

Which generic flags apply is the model's to say: a flag or ``--param`` the chosen kind does
not take is refused with the parameters it does take (issue 9), never silently dropped.
"""

from __future__ import annotations

import os
import time
from typing import Any

import click
from click.core import ParameterSource

from collabkit.cli import output as out
from collabkit.cli.distributed import Ranks, distributed_options, launch_or_join
from collabkit.cli.options import (
    _load_data,
    _range,
    _split,
    check_kind,
    common,
    data_options,
    model_params,
    parse_params,
    refuse_unknown_params,
)
from collabkit.errors import ConfigError

#: generic flags -> the model parameter each sets (when the model takes it)
FLAGS = {"n_factors": "--factors", "epochs": "--epochs", "lr": "--lr", "wd": "--wd",
         "batch_size": "--batch-size", "y_range": "--y-range", "valid_frac": "--valid-frac"}


@click.command()
@data_options
@click.option("--split", "how", default=None,
              help="random | user | temporal | last | kfold | none | ml-100k's u1..u5, ua, ub | "
                   "gowalla's canonical. Default: random for ratings; for implicit data "
                   "canonical (gowalla), last (with timestamps) or user.")
@click.option("--folds", default=5, show_default=True, help="Folds for --split kfold.")
@click.option("--test-frac", default=0.2, show_default=True,
              help="Test share for random/user/temporal.")
@click.option("--last", "last", default=1, show_default=True, metavar="K",
              help="Rows per user held out by --split last (their K latest).")
@click.option("-k", "k", default=20, show_default=True,
              help="Cut-off of the full-ranking metrics (implicit data).")
@click.option("--valid-frac", default=0.1, show_default=True,
              help="Share of the training rows held out for validation (models that carve one).")
@click.option("--model", "kind", default=None,
              help="Model kind (default: dot for ratings, ials for implicit data).")
@click.option("--factors", type=int, default=None, help="Latent factors (default: the model's).")
@click.option("--epochs", type=int, default=None, help="Epochs (default: the model's).")
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option("--wd", type=float, default=None, help="Weight decay.")
@click.option("--batch-size", type=int, default=None, help="Batch size.")
@click.option("--y-range", default=None, metavar="LOW,HIGH", help="Sigmoid range, or 'none'.")
@click.option("--recipe", default=None, type=click.Choice(["chapter"]),
              help="Named settings: 'chapter' = the fast.ai chapter's AdamW, wd 0.1, batch 64, "
                   "one-cycle at 5e-3 for 5 epochs, 20% validation (flags still override).")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE",
              help="Any other model parameter, e.g. --param layers=100,50 (repeatable).")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of the split and (when it takes one) of the model.")
@click.option("--out", "out_dir", default=None, metavar="DIR",
              help="Model folder (default runs/<data>-<model>).")
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="After scoring on the test split, refit the saved model on every row given "
                   "(train + test); --no-refit saves the scored model, fitted to the train part.")
@distributed_options
@common
@click.pass_context
def train(ctx: click.Context, how: str | None, folds: int, test_frac: float, last: int, k: int,
          valid_frac: float, kind: str | None, factors: int | None, epochs: int | None,
          lr: float | None, wd: float | None,
          batch_size: int | None, y_range: str | None, recipe: str | None,
          extra: tuple[str, ...], seed: int, out_dir: str | None, refit: bool,
          nproc: int | None, tier: str, sparse_grad: str | None, memory_per_rank: str | None,
          as_json: bool, quiet: bool, **data_kw: Any) -> None:
    """Train a model, score it on the held-out split beside the baselines, save it.

    A flag or --param the model does not take is an error that lists the ones it does.
    Implicit data (--implicit, a file of user,item pairs, --dataset gowalla) trains a ranker
    and is scored by full ranking, with popularity and item-kNN beside.
    --nproc N (or torchrun) trains one model as N processes; see README 'Scaling out'.
    """
    ranks = launch_or_join(ctx, nproc, how or "", tier, sparse_grad, memory_per_rank)
    if ranks is True:  # this process launched the ranks; rank 0 printed and saved
        return
    try:
        _train(ctx, how, folds, test_frac, last, k, valid_frac, kind, factors, epochs, lr, wd,
               batch_size, y_range, recipe, extra, seed, out_dir, refit, as_json, quiet,
               data_kw, ranks or None)
    except BaseException:
        if ranks:
            ranks.close(failed=True)
        raise
    if ranks:
        ranks.close()


def _train(ctx: click.Context, how: str | None, folds: int, test_frac: float, last: int,
           k: int, valid_frac: float, kind: str | None, factors: int | None,
           epochs: int | None, lr: float | None, wd: float | None, batch_size: int | None,
           y_range: str | None, recipe: str | None, extra: tuple[str, ...], seed: int,
           out_dir: str | None, refit: bool, as_json: bool, quiet: bool,
           data_kw: dict[str, Any], ranks: Ranks | None) -> None:
    from collabkit.api import evaluate

    main = ranks is None or ranks.is_main
    show = not (as_json or quiet) and main
    given: dict[str, Any] = {name: v for name, v in (
        ("n_factors", factors), ("epochs", epochs), ("lr", lr), ("wd", wd),
        ("batch_size", batch_size)) if v is not None}
    if y_range is not None:  # 'none': no sigmoid, a linear model
        given["y_range"] = None if y_range.lower() == "none" else _range(y_range)
    if ctx.get_parameter_source("valid_frac") is not ParameterSource.DEFAULT:
        given["valid_frac"] = valid_frac
    pairs = parse_params(extra)
    hint = bool(data_kw.get("implicit")) or data_kw.get("dataset") == "gowalla"
    chosen_kind = kind or ("ials" if hint else "dot")
    params = _model_params(chosen_kind, given, pairs, seed, valid_frac, recipe)
    name = data_kw.get("dataset") or os.path.splitext(os.path.basename(data_kw["ratings"] or ""))[0]
    if how == "kfold":
        out_dir = out_dir or os.path.join("runs", f"{name}-{chosen_kind}")
        _check_out(out_dir, folds)  # before the training run, not after
        _train_kfold(data_kw, chosen_kind, params, folds, seed, out_dir, as_json, quiet)
        return
    if out_dir is not None and (ranks is None or ranks.is_main):
        _check_out(out_dir, None)  # before reading the data and training, not after
    train_data, test_data = _split(data_kw, how, test_frac, seed, show, last)
    if train_data.implicit and kind is None and chosen_kind == "dot":  # found out on reading
        chosen_kind = "ials"
        params = _model_params(chosen_kind, given, pairs, seed, valid_frac, recipe)
    kind = chosen_kind
    check_kind(kind, train_data)
    how = how or _default_split(data_kw, train_data)
    out_dir = out_dir or os.path.join("runs", f"{name}-{kind}")
    if ranks is None or ranks.is_main:
        _check_out(out_dir, None)
    fitter = None
    if ranks is not None:
        params = ranks.prepare(kind, params, pairs, train_data)
        fitter = ranks.fit
    model, fit_s = _fit_with_bar(train_data, kind, params, show, fitter)
    report = (evaluate(model, test_data, k=k)
              if test_data is not None and model is not None else None)
    scored, refit = model, refit and test_data is not None
    if refit:  # issue 14: the test rows scored the model; the saved one learns from them too
        model, _ = _fit_with_bar(_all_rows(train_data, test_data), kind, params, show, fitter)
    path = _save(model, out_dir) if ranks is None else ranks.save(model, out_dir)
    if not main:
        return
    valid_rmse = _last_valid(scored)
    result: dict[str, Any] = {
              "model": path, "kind": kind, "split": how, "n_train": len(train_data),
              "n_test": 0 if test_data is None else len(test_data),
              "fit_seconds": round(fit_s, 3), "epochs": len(getattr(scored, "history_", [])),
              "valid_rmse": valid_rmse, "seed": seed, "refit": refit,
              "n_saved_model_rows": int(model.n_train_),
              "chosen": getattr(scored, "chosen_", None),
              "saved_model_chosen": getattr(model, "chosen_", None), "recipe": recipe}
    if valid_rmse is not None:
        result["valid_mse"] = valid_rmse**2
    if ranks is not None:
        result["distributed"] = ranks.plan
    if report is not None:
        result.update(report.to_dict())
    if as_json:
        out.emit_json(result)
        return
    if not quiet:
        _print_train(result, report, train_data, test_data, fit_s)


def _default_split(data_kw: dict[str, Any], data: Any) -> str:
    """The split used when --split is not given (the rule in :func:`options._split`)."""
    if not data.implicit:
        return "random"
    if data_kw.get("dataset") == "gowalla":
        return "canonical"
    return "last" if data.timestamps is not None else "user"


def _model_params(kind: str, flags: dict[str, Any], extra: dict[str, Any], seed: int,
                  valid_frac: float, recipe: str | None = None) -> dict[str, Any]:
    """The constructor arguments for ``kind``: the flags and ``--param`` pairs the user gave
    (each refused when the model does not take it: the model's own parameter list decides),
    plus the seed and the default validation share where the model takes them."""
    from collabkit.models import registry

    est = registry.get(kind)()  # an unknown kind fails here, before any data is read
    refuse_unknown_params(est, {**{n: FLAGS[n] for n in flags},
                                **{n: f"--param {n}" for n in extra}},
                          {**FLAGS, "random_state": "--seed"})
    from collabkit.models.recipes import recipe_params

    params = {**(recipe_params(recipe, kind) if recipe else {}), **flags, **extra}
    accepted = model_params(est)
    for name, default in (("random_state", seed), ("valid_frac", valid_frac)):
        if name in accepted:
            params.setdefault(name, default)
    return params


def _all_rows(train: Any, test: Any) -> Any:
    """The rows of both parts of a split, as one table (the parts share vocabularies)."""
    import dataclasses

    import numpy as np

    from collabkit.data.interactions import Interactions

    if train.user_vocab is not test.user_vocab or train.item_vocab is not test.item_vocab:
        import pandas as pd

        both = pd.concat([train.to_dataframe(), test.to_dataframe()], ignore_index=True)
        return Interactions.from_dataframe(both, rating_range=train.rating_range,
                                           name=train.name)
    ts = (None if train.timestamps is None or test.timestamps is None
          else np.concatenate([train.timestamps, test.timestamps]))
    return dataclasses.replace(train, users=np.concatenate([train.users, test.users]),
                               items=np.concatenate([train.items, test.items]),
                               ratings=np.concatenate([train.ratings, test.ratings]),
                               timestamps=ts)


def _check_out(out_dir: str, folds: int | None) -> None:
    """Refuse an --out that a save must not replace (a file, a folder of other things, ...)."""
    from collabkit._modelfolder import check_save_target

    if folds is None:
        check_save_target(out_dir, arg="--out")
    else:  # the models go to OUT/fold-N
        for n in range(1, folds + 1):
            check_save_target(os.path.join(out_dir, f"fold-{n}"), arg="--out")


def _save(model: Any, path: str) -> str:
    from collabkit.models.persist import save_model

    return save_model(model, path, arg="--out")


def _fit_with_bar(data: Any, kind: str, params: dict[str, Any], show: bool,
                  fitter: Any = None) -> tuple[Any, float]:
    """Fit ``kind`` with a progress bar when the model reports its epochs (it takes a
    ``callback``), noting the closed-form passes it runs after them (``refit_users``).
    ``fitter(data, estimator)`` trains instead of :func:`collabkit.api.fit` (a tier's ranks)."""
    from collabkit.api import fit
    from collabkit.models import registry

    est = registry.get(kind)(**params)
    own = est.get_params()
    reports = "callback" in own
    then = "closed-form passes" if own.get("refit_users") else None
    with out.EpochProgress(int(own.get("epochs") or 0), show and reports, then=then) as bar:
        if reports:
            est.set_params(callback=bar)
        t0 = time.perf_counter()
        model = fit(data, est) if fitter is None else fitter(data, est)
        fit_s = time.perf_counter() - t0
    if reports and model is not None:
        model.set_params(callback=None)
    return model, fit_s


def _train_kfold(data_kw: dict[str, Any], kind: str, params: dict[str, Any], folds: int,
                 seed: int, out_dir: str, as_json: bool, quiet: bool) -> None:
    """k-fold cross-validation: one model per fold, saved as OUT/fold-N; mean ± sd."""
    import pandas as pd

    from collabkit.data.split import kfold
    from collabkit.metrics.evaluate import evaluate

    show = not (as_json or quiet)
    data = _load_data(data_kw, show)
    if data.implicit:
        raise ConfigError("--split kfold scores ratings by RMSE; implicit data is scored by "
                          "full ranking: use --split last (each user's latest) or --split user")
    rows, paths = [], []
    for n, sp in enumerate(kfold(len(data), k=folds, seed=seed), start=1):
        model, fit_s = _fit_with_bar(data.take(sp.train), kind, params, show)
        report = evaluate(model, data.take(sp.test))
        paths.append(_save(model, os.path.join(out_dir, f"fold-{n}")))
        rows.append({"fold": n, "rmse": report.rmse, "mae": report.mae,
                     "bias_rmse": float(report.table["rmse"].iloc[2]),
                     "mean_rmse": float(report.table["rmse"].iloc[1]), "fit_seconds": fit_s})
    df = pd.DataFrame(rows)
    summary: dict[str, Any] = {
        "kind": kind, "split": f"kfold({folds})", "models": paths,
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
            + (f"; validation MSE {result['valid_rmse'] ** 2:.4f}, RMSE "
               f"{result['valid_rmse']:.4f}" if result["valid_rmse"] else ""))
    if report is not None and hasattr(report, "k"):  # a ranker: full-ranking metrics
        o.print(out.ranking_table(report, f"test split '{result['split']}': "
                                  f"{report.n_test:,} held-out interactions of "
                                  f"{report.n_users:,} users, full ranking"))
    elif report is not None:
        o.print(out.metrics_table(report.table, f"test split '{result['split']}': "
                                  f"{report.n} held-out ratings"))
        if report.n_fallback:
            o.print(f"[yellow]{report.n_fallback} test ratings had a user or item unseen in "
                    f"training ({report.n_unknown_users} users, {report.n_unknown_items} items); "
                    "the bias baseline scored them.[/]")
    chosen = result.get("chosen")
    name = chosen.get("strength", "wd") if chosen else "wd"  # BiasedMF's wd, SVD++'s reg
    if chosen and chosen.get(name) is not None:
        tried = ", ".join(f"{w:.3g} -> " + ("n/a" if v is None else f"{v:.4f}")
                          for w, v in chosen[f"{name}_tried"])
        o.print(f"regularisation chosen on {chosen['n_valid']:,} validation rows: "
                f"{name}={chosen[name]:.3g}" + (f" (tried {tried})" if tried else " (as given)"))
        if chosen["serving"] == "baseline":
            o.print("[yellow]the model lost to the damped-bias baseline on the validation rows "
                    "(RMSE {:.4f} vs {:.4f}): it serves the baseline's predictions[/]"
                    .format(chosen["model_valid_rmse"], chosen["baseline_valid_rmse"]))
    n_all = result["n_train"] + result["n_test"]
    if result.get("refit"):
        o.print(f"the scores above are of a model fitted to {result['n_train']:,} of the "
                f"{n_all:,} rows; the saved model was refit on all {n_all:,}")
    elif result["n_test"]:
        o.print(f"[yellow]the saved model learned from {result['n_train']:,} of the {n_all:,} "
                f"rows ({result['n_train'] / n_all:.0%}); the other {result['n_test']:,} were "
                "held out for the test scores above (--refit uses them all)[/]")
    o.print(f"model saved to [bold]{result['model']}[/]")
