"""Rendering for the CLI: rich tables and progress on stderr, or one JSON object on stdout."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # numpy, pandas and torch load only when a command needs them
    from types import TracebackType

    import pandas as pd

    from collabkit.train.loop import EpochStats

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0:  # a numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


#: collabkit warnings issued during this command (filled by :func:`show_warning`)
warnings_seen: list[str] = []
#: API words in warning messages and the CLI flags that say the same
def show_warning(message: Warning | str, category: type[Warning], *args: Any,
                 **kw: Any) -> None:
    """``warnings.showwarning`` for the CLI: one ``warning:`` line on stderr, in CLI words;
    collabkit's own warnings are also kept for ``--json``."""
    from collabkit.errors import DataWarning

    text = cli_message(str(message))
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
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._started:
            if exc_type is None and self.then:
                self._progress.update(self._task, info=f"{self._info}  {self.then} done")
            self._progress.__exit__(exc_type, exc, tb)

    def __call__(self, s: EpochStats) -> None:
        if not self._started:
            self._progress.__enter__()
            self._started = True
        if s.valid_rmse is None:
            info = f"loss {s.train_loss:.4f}"
        else:  # issue 12: losses in MSE as the chapter prints them, RMSE beside
            info = f"loss {s.train_loss:.3f} valid {s.valid_rmse ** 2:.3f} RMSE {s.valid_rmse:.3f}"
        self._info = info
        if self.then and s.epoch >= self.epochs:
            info += f"  {self.then}..."
        self._progress.update(self._task, completed=s.epoch, info=info)


def metrics_table(table: pd.DataFrame, title: str) -> Group:
    """The model's RMSE/MAE with the baselines beneath it, under a title line."""
    t = Table()
    t.add_column("scorer")
    t.add_column("MSE", justify="right")
    t.add_column("RMSE", justify="right")
    t.add_column("MAE", justify="right")
    for i, (name, row) in enumerate(table.iterrows()):
        style = "bold" if i == 0 else "dim"
        t.add_row(str(name), f"{row['rmse'] ** 2:.4f}", f"{row['rmse']:.4f}", f"{row['mae']:.4f}",
                  style=style)
    return Group(Text(title, style="bold"), t)


def ranking_table(report: Any, title: str) -> Group:
    """Full-ranking metrics at k, one row per metric: the ranker's column first (bold), then
    its baselines'; a note of the test users the model never saw."""
    k = report.k
    names = {"recall": f"Recall@{k}", "ndcg": f"NDCG@{k}", "hit_rate": f"HR@{k}",
             "map": f"MAP@{k}", "mrr": f"MRR@{k}", "coverage": "catalog coverage",
             "mean_popularity": "mean popularity"}
    t = Table()
    t.add_column("metric", no_wrap=True)
    scorers = [str(x) for x in report.table.index]
    for j, name in enumerate(scorers):
        t.add_column(name, justify="right", no_wrap=True, style="bold" if j == 0 else "dim")
    for c in (c for c in names if c in report.table.columns):
        t.add_row(names[c], *[f"{v:.4f}" for v in report.table[c].tolist()])
    parts: list[Any] = [Text(title, style="bold"), t]
    if report.skipped_users:
        parts.append(Text(f"{report.skipped_users:,} test users have no training interactions "
                          "and were not scored", style="yellow"))
    return Group(*parts)


def frame_table(df: pd.DataFrame, title: str, floats: str = "{:.3f}") -> Group:
    """Any small DataFrame as a table, under a title line."""
    t = Table()
    for c in df.columns:
        t.add_column(str(c), justify="right" if df[c].dtype.kind in "iuf" else "left")
    for row in df.itertuples(index=False):
        t.add_row(*[("" if v is None or (isinstance(v, float) and math.isnan(v))
                     else floats.format(v) if isinstance(v, float) else str(v)) for v in row])
    return Group(Text(title, style="bold"), t)


def folded_table(rows: list[dict[str, Any]], title: str) -> Group:
    """Rows of text as a table whose long cells fold onto more lines instead of being cut."""
    t = Table()
    for c in rows[0] if rows else []:
        t.add_column(str(c), overflow="fold", no_wrap=False)
    for row in rows:
        t.add_row(*[str(v) for v in row.values()])
    return Group(Text(title, style="bold"), t)


# ---------------------------------------------------------------------------- API words -> CLI
# Library messages name Python arguments (``sep=``, ``timestamp_col=False``); on the command
# line the same advice must name flags. One mapping, applied to the text of every error and
# warning the CLI prints, keeps a single message per condition.
_FLAGS = {
    "user_col": "--user-col", "item_col": "--item-col", "rating_col": "--rating-col",
    "timestamp_col": "--timestamp-col", "sep": "--sep", "encoding": "--encoding",
    "rating_range": "--rating-range", "header": "--header", "lr": "--lr", "wd": "--wd",
    "n_factors": "--factors", "epochs": "--epochs", "batch_size": "--batch-size",
    "y_range": "--y-range", "valid_frac": "--valid-frac", "test_frac": "--test-frac",
    "random_state": "--seed",
}  # fmt: skip
# model parameters without a flag of their own: --param NAME=VALUE
_PARAMS = frozenset({"reg", "reg_bias", "beta0", "noise_precision", "init_std", "refit_users",
                     "optimizer", "kernel", "layers", "dropout", "reg_exponent"})
_PHRASES = (  # whole phrases that have no CLI counterpart or read differently there
    (", or pass a DataFrame", ""), (" (or pass data_dir=<folder>)", ""),
    ("Pass download=True to fetch it, or", "Run `collabkit datasets download NAME`, or"),
    ("rating_range=(low, high)", "--rating-range LOW,HIGH"), ("clip=False", "--raw"),
    ("(split before fitting)", "(train --no-refit saves the model fitted to the train part)"),
    ("or leave recency=None", "or leave out --param recency"),
)
# a name=value, or a bare name: short names only with "=", as they are also English words;
# never one already after "--param " (text in CLI words stays as it is: issue 9)
_VALUE = r"""(?:'(?:[^'\\]|\\.)*'|"[^"]*"|\([^)]*\)|-?\w(?:[\w.+-]*\w)?)"""
_NAMES = "|".join(sorted([*_FLAGS, *_PARAMS], key=len, reverse=True))
_ARG_RE = re.compile(
    rf"(?<![\w-])(?<!--param )(?P<name>{_NAMES})"
    rf"(?:=(?P<value>{_VALUE})?|(?P<bare>(?<=_col)|(?<=_range)|(?<=_factors)|(?<=_size)"
    rf"|(?<=_frac)|(?<=_state))(?![\w=]))"
)


def _flag(match: re.Match[str]) -> str:
    name, value = match["name"], match["value"]
    if name in _PARAMS:
        return f"--param {name}={value or 'VALUE'}" if match["bare"] is None else name
    flag = _FLAGS[name]
    if value is None:
        return flag
    if name == "timestamp_col" and value == "False":
        return "--no-timestamp"
    if name == "header" and value in ("True", "False"):
        return "--header" if value == "True" else "--no-header"
    if value == "None":
        return f"no {flag}"
    if value.startswith("("):  # a tuple: LOW,HIGH
        return f"{flag} " + ",".join(x.strip() for x in value[1:-1].split(","))
    if value[0] in "'\"":
        inner = value[1:-1]
        return f"{flag} '{inner}'" if not inner.replace("-", "").isalnum() else f"{flag} {inner}"
    return f"{flag} {value}"


# a model parameter's name opening a message or a clause ("alpha must be a number >= 0, got -1",
# "every trial failed; the first: alpha must ...")
_LEAD_RE = re.compile(r"(?:^|(?<=: ))(?P<name>[a-z][a-z0-9_]*)(?= must )")


def _model_params() -> frozenset[str]:
    """Every constructor parameter of a registered model kind (what ``--param`` can set)."""
    from collabkit.models import registry

    return frozenset(p for k in registry.kinds() for p in registry.get(k)._param_names())


def cli_message(text: str) -> str:
    """``text`` with Python-API advice in CLI words (``sep=';'`` -> ``--sep ';'``)."""
    for api, cli in _PHRASES:
        text = text.replace(api, cli)
    text = _LEAD_RE.sub(lambda m: f"--param {m['name']}" if m["name"] not in _FLAGS
                        and m["name"] in _model_params() else m["name"], text)
    return _ARG_RE.sub(_flag, text)
