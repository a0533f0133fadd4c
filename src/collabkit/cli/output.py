"""Rendering for the CLI: rich tables and progress on stderr, or one JSON object on stdout."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from collabkit.train.loop import EpochStats

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


#: collabkit warnings issued during this command (filled by :func:`show_warning`)
warnings_seen: list[str] = []
#: API words in warning messages and the CLI flags that say the same
_CLI_WORDS = (("rating_range=(low, high)", "--rating-range LOW,HIGH"),
              ("rating_range=", "--rating-range "), ("clip=False", "--raw"), ("(lr=", "(--lr "))


def show_warning(message: Warning | str, category: type[Warning], *args: Any,
                 **kw: Any) -> None:
    """``warnings.showwarning`` for the CLI: one ``warning:`` line on stderr, in CLI words;
    collabkit's own warnings are also kept for ``--json``."""
    from collabkit.errors import DataWarning

    text = str(message)
    for api, flag in _CLI_WORDS:
        text = text.replace(api, flag)
    print(f"warning: {text}", file=sys.stderr)
    if issubclass(category, DataWarning):
        warnings_seen.append(text)


def emit_json(obj: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout, with this command's warnings under "warnings"."""
    if warnings_seen or "warnings" in obj:
        known = list(obj.get("warnings", []))
        obj = {**obj, "warnings": known + [w for w in warnings_seen if w not in known]}
    sys.stdout.write(json.dumps(_clean(obj)) + "\n")
    sys.stdout.flush()


class EpochProgress:
    """A live bar over epochs showing training loss and validation RMSE; silent if disabled.

    ``then`` names work the model does after its last epoch (BiasedMF's closed-form passes,
    which take as long as the epochs on big data): the bar says so while it runs.
    """

    def __init__(self, epochs: int, enabled: bool, then: str | None = None) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.then = then
        self._progress = Progress(
            TextColumn("[bold]training"), BarColumn(),
            TextColumn("epoch {task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=stderr,
            disable=not enabled, transient=False)
        self._task = self._progress.add_task("fit", total=epochs, info="")
        self._info = ""
        self._started = False

    def __enter__(self) -> EpochProgress:
        return self  # the bar appears with the first epoch, so early errors print alone

    def __exit__(self, *exc: object) -> None:
        if self._started:
            if exc[0] is None and self.then:
                self._progress.update(self._task, info=f"{self._info}  {self.then} done")
            self._progress.__exit__(*exc)

    def __call__(self, s: EpochStats) -> None:
        if not self._started:
            self._progress.__enter__()
            self._started = True
        info = f"loss {s.train_loss:.4f}"
        if s.valid_rmse is not None:
            info += f"  valid RMSE {s.valid_rmse:.4f}"
        self._info = info
        if self.then and s.epoch >= self.epochs:
            info += f"  {self.then}..."
        self._progress.update(self._task, completed=s.epoch, info=info)


def metrics_table(table: pd.DataFrame, title: str) -> Group:
    """The model's RMSE/MAE with the baselines beneath it, under a title line."""
    t = Table()
    t.add_column("scorer")
    t.add_column("RMSE", justify="right")
    t.add_column("MAE", justify="right")
    for i, (name, row) in enumerate(table.iterrows()):
        style = "bold" if i == 0 else "dim"
        t.add_row(str(name), f"{row['rmse']:.4f}", f"{row['mae']:.4f}", style=style)
    return Group(Text(title, style="bold"), t)


def frame_table(df: pd.DataFrame, title: str, floats: str = "{:.3f}") -> Group:
    """Any small DataFrame as a table, under a title line."""
    t = Table()
    for c in df.columns:
        t.add_column(str(c), justify="right" if df[c].dtype.kind in "iuf" else "left")
    for row in df.itertuples(index=False):
        t.add_row(*[("" if v is None or (isinstance(v, float) and math.isnan(v))
                     else floats.format(v) if isinstance(v, float) else str(v)) for v in row])
    return Group(Text(title, style="bold"), t)
