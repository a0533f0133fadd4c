"""``collabkit tune``: a hyperparameter search for any model kind (:func:`collabkit.tune`).

Validation rows come from the training part of the split only; the best parameters are refit
on every training row; the test part is scored once, at the end.
"""

from __future__ import annotations

import math
import os
from typing import Any

import click

from collabkit.cli import output as out
from collabkit.cli.options import (
    _split,
    check_kind,
    common,
    data_options,
    parse_params,
    refuse_unknown_params,
    split_options,
)
from collabkit.errors import ConfigError


@click.command("tune")
@data_options
@split_options
@click.option("--model", "kind", required=True, help="Model kind to tune (any, explicit or "
              "implicit; `collabkit train --help` lists them).")
@click.option("--trials", default=20, show_default=True, help="Trials to run.")
@click.option("--metric", default=None,
              help="Validation metric: rmse (default) or mae for ratings; ndcg (default), "
                   "recall, hit_rate, map or mrr, optionally @K, for implicit data.")
@click.option("-k", "k", default=20, show_default=True,
              help="Cut-off of the ranking metrics when --metric names none.")
@click.option("--timeout", type=float, default=None, metavar="S",
              help="Start no trial after S seconds.")
@click.option("--valid-frac", default=0.2, show_default=True,
              help="Share of the training rows (of each user's for implicit data: their "
                   "latest when the rows have timestamps) scored in each trial.")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE",
              help="Hold a parameter fixed in every trial, e.g. --param epochs=5 (repeatable).")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of the split, the validation carve, the sampler and the model.")
@click.option("--out", "out_dir", default=None, metavar="DIR",
              help="Save the refit model here (not saved without it).")
@common
def tune_cmd(how: str | None, test_frac: float, last: int, kind: str, trials: int,
             metric: str | None, k: int, timeout: float | None, valid_frac: float,
             extra: tuple[str, ...], seed: int, out_dir: str | None, as_json: bool, quiet: bool,
             **data_kw: Any) -> None:
    """Search the hyperparameters of a model kind (Optuna, TPE), refit the best, test once.

    Each trial fits on the training part less a validation carve and is scored on that carve
    (RMSE for ratings; NDCG@20 by full ranking for implicit data). The best parameters are
    then refit on the whole training part, and the test part is scored once, at the end.
    """
    from collabkit.metrics.ranking_report import is_ranker
    from collabkit.models import registry
    from collabkit.models.search import search_space
    from collabkit.tuning import parse_metric, tune

    show = not (as_json or quiet)
    cls = registry.get(kind)  # before any data is read
    space = search_space(kind)
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be a number of seconds > 0, got {timeout:g}")
    if not 0 < valid_frac < 1:
        raise ConfigError(f"--valid-frac must be between 0 and 1 (exclusive), got {valid_frac}")
    try:
        parse_metric(metric, is_ranker(cls), k)
    except ConfigError as e:
        raise ConfigError(f"--{e}") from None
    fixed = parse_params(extra)
    refuse_unknown_params(cls(), {n: f"--param {n}" for n in fixed}, {"random_state": "--seed"})
    if out_dir is not None:
        from collabkit._modelfolder import check_save_target

        check_save_target(out_dir, arg="--out")
    train, test = _split(data_kw, how, test_frac, seed, show, last)
    check_kind(kind, train)
    bar = _TrialBar(trials if space else 1, show)
    with bar:
        result = tune(train, kind, test=test, trials=trials, metric=metric, k=k,
                      timeout=timeout, seed=seed, valid_frac=valid_frac, params=fixed,
                      callback=bar)
    saved = None
    if out_dir is not None:
        from collabkit.models.persist import save_model

        saved = save_model(result.model, out_dir, arg="--out")
    summary = {"kind": kind, "metric": result.metric, "direction": result.direction,
               "best_params": result.best_params, "best_valid": result.best_value,
               "params": {p: v for p, v in result.params.items()},
               "n_train": result.n_train, "n_fit": result.n_fit, "n_valid": result.n_valid,
               "valid_split": result.valid_split, "seed": seed,
               "refit_seconds": result.refit_seconds, "test": result.test,
               "n_test": 0 if test is None else len(test), "model": saved,
               "trials": result.trials.to_dict(orient="records")}
    if as_json:
        out.emit_json(summary)
    elif not quiet:
        _print(result, summary, train)


class _TrialBar:
    """Progress over trials on stderr: the last score and the best so far."""

    def __init__(self, total: int, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.best: float | None = None
        self._progress = Progress(TextColumn("[bold]tuning"), BarColumn(),
                                  TextColumn("trial {task.completed}/{task.total}"),
                                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                  console=out.stderr, disable=not enabled)
        self._task = self._progress.add_task("tune", total=total, info="")

    def __enter__(self) -> _TrialBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, row: dict[str, Any]) -> None:
        info = "failed" if row["state"] != "complete" else f"score {row['score']:.4f}"
        self._progress.update(self._task, advance=1, info=info)


def _print(result: Any, summary: dict[str, Any], train: Any) -> None:
    from collabkit.tuning import best_index

    o = out.stdout
    df = result.trials
    best = best_index(df, result.direction) if len(df) else -1
    rows = []
    for j, r in enumerate(df.to_dict(orient="records")):
        row = {"": "*" if j == best else "", "trial": r["trial"],
               "score": "failed" if r["state"] != "complete" else f"{r['score']:.4f}",
               "seconds": f"{r['seconds']:.1f}",
               "parameters": " ".join(f"{p}={_short(r[p])}" for p in result.best_params)
               or "(none to search)"}
        if r["state"] != "complete":
            row["parameters"] += f" ({r['error']})"
        rows.append(row)
    o.print(out.folded_table(rows, f"{len(df)} trials of {result.kind}: validation "
                                   f"{result.metric} on {result.n_valid:,} rows "
                                   f"({result.valid_split}), fitted on {result.n_fit:,}"))
    shown = ", ".join(f"{p}={_short(v)}" for p, v in result.best_params.items()) \
        or "(nothing to search)"
    o.print(f"best: {shown}; validation {result.metric} {result.best_value:.4f}")
    o.print(f"refit on all {result.n_train:,} training rows in {result.refit_seconds:.1f} s")
    if result.test is not None:
        scores = ", ".join(f"{m} {v:.4f}" for m, v in result.test.items())
        o.print(f"[bold]test[/] ({summary['n_test']:,} held-out rows, scored once): {scores}")
    if summary["model"]:
        o.print(f"model saved to [bold]{summary['model']}[/]")
    elif train is not None:
        o.print(f"not saved (give --out DIR to keep the model; e.g. "
                f"{os.path.join('runs', f'{result.kind}-tuned')})")


def _short(v: Any) -> str:
    """A parameter value in a few characters: 0.0123, 52, True, None (a choice of none)."""
    if isinstance(v, float) and math.isnan(v):  # a None choice in a table column of floats
        return "None"
    return f"{v:.3g}" if isinstance(v, float) else str(v)
