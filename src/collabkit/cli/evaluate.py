"""``collabkit evaluate``: score a saved model on held-out ratings beside the baselines."""

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
              help="Score on this split's test part (u1..u5/ua/ub, or random/user/... with "
                   "--seed); default: all rows of --ratings/--dataset.")
@click.option("--test-frac", default=0.2, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@common
def evaluate_cmd(model_dir: str, how: str | None, test_frac: float, seed: int, as_json: bool,
                 quiet: bool, **data_kw: Any) -> None:
    """Score a saved MODEL on held-out ratings, beside the baselines."""
    from collabkit.metrics.evaluate import evaluate
    from collabkit.models.persist import load_model

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
