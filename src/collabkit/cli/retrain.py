"""CLI commands of the feedback loop (issue 11): ``retrain`` a model from new ratings.

The service's forms (``retrain --db``, ``loop-report --db``) join here with the service.
"""

from __future__ import annotations

import os

import click

from collabkit.cli import output as out
from collabkit.cli.options import common
from collabkit.errors import ConfigError


@click.command()
@click.argument("model_dir", metavar="MODEL")
@click.option("--feedback", "feedback", default=None, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="New ratings: user, item, rating[, timestamp] (CSV, TSV or Parquet).")
@click.option("--db", "db", default=None, metavar="PATH",
              help="Or: the feedback database of `collabkit serve` (every stored rating).")
@click.option("--out", "out_dir", required=True, metavar="NEW",
              help="A new folder for the retrained model (an existing path is refused).")
@click.option("--holdout-frac", default=0.2, show_default=True,
              help="Share of the newest feedback held out to compare old and new.")
@common
def retrain(model_dir: str, feedback: str | None, db: str | None, out_dir: str,
            holdout_frac: float, as_json: bool, quiet: bool) -> None:
    """Retrain MODEL on its own training ratings plus --feedback (or --db); say whether to
    promote it."""
    from dataclasses import replace

    from collabkit.data.read import read_ratings
    from collabkit.models.persist import load_model
    from collabkit.retrain import retrain as run_retrain

    if os.path.exists(out_dir):
        raise ConfigError(f"--out {out_dir!r} already exists; retrain writes a new model folder "
                          "and never replaces one, so give a path that does not exist")
    if not 0 < holdout_frac < 1:
        raise ConfigError(f"--holdout-frac must be between 0 and 1, got {holdout_frac}")
    if (feedback is None) == (db is None):
        raise ConfigError("give the new ratings as --feedback FILE or --db PATH (the feedback "
                          "database of `collabkit serve`), one of the two")
    if db is not None and not os.path.isfile(db):
        raise ConfigError(f"--db {db!r} does not exist; give the feedback database "
                          "`collabkit serve` wrote (MODEL.feedback.sqlite3 by default)")
    model = load_model(model_dir)
    if db is not None:
        try:
            from collabkit.serve.retrainer import feedback_frame
        except ImportError as e:
            raise ConfigError(f"retrain --db needs the serve extra ({e.name} is missing); "
                              "install it with: pip install 'collabkit[serve]'") from None

        rows = feedback_frame(db, model)
        if rows.empty:
            raise ConfigError(f"--db {db!r} holds no feedback yet; nothing to retrain on")
    else:
        # the model's rating range: an out-of-range rating is reported with its file and line
        rows = read_ratings(str(feedback), rating_range=model.rating_range_)
    report = replace(run_retrain(model, rows, out_dir, holdout_frac=holdout_frac),
                     old_model=model_dir)
    if as_json:
        out.emit_json(report.to_dict())
    elif not quiet:
        verdict = "promote it" if report.promote else "keep serving the old model"
        out.stdout.print(
            f"trained on {report.n_base - report.n_replaced} old + {report.n_feedback_train} "
            f"feedback ratings in {report.fit_seconds:.1f} s -> {report.new_model}\n"
            f"RMSE on the {report.n_holdout} newest feedback ratings: old "
            f"{report.old_rmse:.4f}, new {report.new_rmse:.4f}: {verdict}")
