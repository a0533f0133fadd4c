"""``collabkit loop-report --db PATH``: the feedback loop, watched (issue 11).

What the service recommended (its served-list log), summarised per time window: catalog
coverage, exposure Gini, mean popularity percentile of served items, share of lists by tier.
The same numbers as ``/metrics`` (:mod:`collabkit.serve.loopreport`); needs only the database.
"""

from __future__ import annotations

import click

from collabkit.cli import output as out
from collabkit.cli.options import common
from collabkit.errors import ConfigError


@click.command("loop-report")
@click.option("--db", "db", required=True, metavar="PATH",
              help="The feedback database `collabkit serve` wrote.")
@click.option("--window", default=None, metavar="FREQ",
              help="Time windows, a pandas frequency such as 1h, 30min or 1D (default: "
                   "only the total).")
@common
def loop_report_cmd(db: str, window: str | None, as_json: bool, quiet: bool) -> None:
    """Coverage, exposure Gini, popularity and tier shares of the served lists in --db."""
    import pandas as pd

    from collabkit.serve.loopreport import loop_report

    if window is not None:
        try:
            if pd.Timedelta(window) <= pd.Timedelta(0):
                raise ValueError
        except ValueError:
            raise ConfigError(f"--window {window!r} is not a positive time span such as 1h, "
                              "30min or 1D") from None
    table = loop_report(db, window=window)
    table["window_start"] = [w if isinstance(w, str) else w.isoformat()
                             for w in table["window_start"]]
    if as_json:
        out.emit_json({"db": db, "window": window, "windows": table.to_dict("records")})
    elif not quiet:
        out.stdout.print(out.frame_table(table, "served lists (coverage and Gini over the "
                                         "serving model's catalogue)"))
