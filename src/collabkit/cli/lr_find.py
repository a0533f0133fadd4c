"""``collabkit lr-find``: sweep the learning rate on the data, suggest one, plot the curve."""

from __future__ import annotations

import os
from typing import Any

import click

from collabkit.cli import output as out
from collabkit.cli.options import (
    _load_data,
    common,
    data_options,
    parse_params,
    refuse_unknown_params,
)


@click.command("lr-find")
@data_options
@click.option("--model", "kind", default="dot", show_default=True,
              help="Model kind, or a saved MODEL folder whose parameters to use.")
@click.option("--png", default="lr_find.png", show_default=True, metavar="FILE")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE",
              help="A model parameter, e.g. --param n_factors=40 (repeatable).")
@common
def lr_find_cmd(kind: str, png: str, extra: tuple[str, ...], as_json: bool, quiet: bool,
                **data_kw: Any) -> None:
    """Sweep the learning rate on the data; suggest one and plot loss against lr."""
    from collabkit.models import registry
    from collabkit.models.persist import load_model
    from collabkit.plots import plot_lr_find
    from collabkit.train.lr_find import lr_find

    params = parse_params(extra)  # issue 9: a malformed pair is refused, not dropped
    if os.path.isdir(kind):
        est: Any = load_model(kind)
        est = type(est)(**{k: v for k, v in est.get_params().items()})
    else:
        est = registry.get(kind)()
    refuse_unknown_params(est, {k: f"--param {k}" for k in params})
    est.set_params(**params)
    data = _load_data(data_kw, not (as_json or quiet))
    res = lr_find(est, data)
    path = plot_lr_find(res.lrs, res.losses, res.suggestion, png)
    if as_json:
        out.emit_json({"suggestion": res.suggestion, "steepest": res.steepest, "png": path})
    elif not quiet:
        out.stdout.print(f"suggested lr {res.suggestion:.2g} (valley; steepest descent at "
                         f"{res.steepest:.2g}); wrote {path}")
