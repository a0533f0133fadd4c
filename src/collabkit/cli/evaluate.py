"""``collabkit evaluate``: score a saved model on held-out rows beside the baselines: RMSE and
MAE for a rating model, full-ranking Recall/NDCG/HR/MAP/MRR@K for an implicit-feedback model."""

from __future__ import annotations

from typing import Any

import click

from collabkit.cli import output as out
from collabkit.cli.options import _load_data, _split, common, data_options
from collabkit.errors import ConfigError


@click.command("evaluate")
@click.argument("model_dir", metavar="MODEL")
@data_options
@click.option("--split", "how", default=None,
              help="Score on this split's test part (u1..u5/ua/ub, gowalla's canonical, or "
                   "random/user/last/... with --seed); default: all rows of --ratings/--dataset "
                   "(gowalla: its test.txt).")
@click.option("--test-frac", default=0.2, show_default=True)
@click.option("--last", "last", default=1, show_default=True, metavar="K",
              help="Rows per user held out by --split last.")
@click.option("-k", "k", default=20, show_default=True,
              help="Cut-off of the full-ranking metrics (implicit-feedback models).")
@click.option("--seed", type=int, default=42, show_default=True)
@common
def evaluate_cmd(model_dir: str, how: str | None, test_frac: float, last: int, k: int,
                 seed: int, as_json: bool, quiet: bool, **data_kw: Any) -> None:
    """Score a saved MODEL on held-out rows, beside the baselines.

    A rating model gets RMSE and MAE beside the global mean and user+item biases; an
    implicit-feedback model gets full-ranking Recall, NDCG, HR, MAP and MRR at -k, coverage
    and mean popularity, beside popularity and item-kNN fitted to its training rows.
    """
    from collabkit.api import evaluate
    from collabkit.metrics.ranking_report import is_ranker
    from collabkit.models.persist import load_model

    show = not (as_json or quiet)
    model = load_model(model_dir)
    ranker = is_ranker(model)
    if ranker and not data_kw.get("dataset") == "gowalla":
        data_kw["implicit"] = True  # a ranker's held-out rows are interactions
    if how is None and data_kw.get("dataset") != "gowalla":
        test = _load_data(data_kw, show)
    else:
        _, test = _split(data_kw, how, test_frac, seed, show, last)
        if test is None:
            raise ConfigError("--split none leaves nothing to evaluate on")
    if ranker != bool(test.implicit):
        raise ConfigError(f"MODEL is a {model.kind!r} model, which predicts ratings, and the "
                          "data is implicit feedback; score it on ratings (leave out --implicit)")
    report = evaluate(model, test, k=k)
    if how is None and data_kw.get("dataset") == "gowalla":
        how = "canonical"
    result = {"model": model_dir, "kind": model.kind, "split": how, **report.to_dict()}
    if as_json:
        out.emit_json(result)
    elif not quiet and ranker:
        out.stdout.print(out.ranking_table(report, f"{report.n_test:,} held-out interactions of "
                                           f"{report.n_users:,} users, full ranking"))
    elif not quiet:
        out.stdout.print(out.metrics_table(report.table, f"{report.n} held-out ratings"))
        if report.n_fallback:
            out.stdout.print(f"{report.n_fallback} ratings fell back to the bias baseline "
                             "(user or item unseen in training)")
