"""Options and argument parsing shared by the CLI's commands: the data options
(``--dataset``/``--ratings`` and the column, separator and header flags), ``--json``/``--quiet``,
``--param NAME=VALUE`` and raw ids typed on the command line.

This is the CLI's leaf module: every command module imports it, and it imports no command
module (and neither the root group in :mod:`collabkit.cli.main`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from collabkit.errors import ConfigError


def _col(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def _range(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(x) for x in value.split(","))
    except ValueError:
        raise ConfigError(f"range {value!r} must be two numbers 'LOW,HIGH', e.g. '1,5'") from None
    return (lo, hi)


def data_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--dataset NAME or --ratings FILE, with column options."""
    opts = [
        click.option("--dataset", "dataset", metavar="NAME",
                     help="MovieLens by name: ml-latest-small (bundled), ml-100k, ml-1m, ..."),
        click.option("--ratings", "ratings", metavar="FILE", type=click.Path(dir_okay=False),
                     help="A ratings file: CSV, TSV, whitespace-separated or Parquet."),
        click.option("--user-col", help="User column (name or 0-based position; default: 1st)."),
        click.option("--item-col", help="Item column (default: 2nd)."),
        click.option("--rating-col", help="Rating column (default: 3rd)."),
        click.option("--timestamp-col", help="Timestamp column (default: 4th when present)."),
        click.option("--no-timestamp", is_flag=True,
                     help="Ignore any timestamp column (e.g. one that holds no Unix times)."),
        click.option("--sep", help="Field separator (default: sniffed); '\\t' or 'tab' for a tab, "
                                   "'\\s+' for runs of whitespace."),
        click.option("--header/--no-header", default=None,
                     help="Whether the first line names the columns (default: guessed)."),
        click.option("--encoding", help="Text encoding (default: utf-8)."),
        click.option("--rating-range", metavar="LOW,HIGH",
                     help="Allowed ratings, e.g. 1,5; outside values are an error."),
        click.option("--implicit", is_flag=True,
                     help="Interactions without ratings (clicks, plays, check-ins): user, item "
                          "[, --rating-col as a weight or count]. With --dataset, every rated "
                          "pair. A file with no rating column, and gowalla, are read so anyway."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _load_data(kw: dict[str, Any], progress: bool) -> Any:
    from collabkit.api import load_dataset, load_ratings

    if bool(kw.get("dataset")) == bool(kw.get("ratings")):
        raise ConfigError("give exactly one of --dataset NAME or --ratings FILE")
    if kw.get("dataset"):
        data = load_dataset(kw["dataset"], progress=progress)
        if kw.get("implicit") and not data.implicit:
            from collabkit.data.implicit import to_implicit

            data = to_implicit(data)
        return data
    if kw.get("no_timestamp") and kw.get("timestamp_col") is not None:
        raise ConfigError("give either --timestamp-col or --no-timestamp, not both")
    ts = False if kw.get("no_timestamp") else _col(kw.get("timestamp_col"))
    if kw.get("implicit") or _no_rating_column(kw):
        return _load_implicit(kw, ts)
    return load_ratings(kw["ratings"], user_col=_col(kw.get("user_col")),
                        item_col=_col(kw.get("item_col")), rating_col=_col(kw.get("rating_col")),
                        timestamp_col=ts, sep=_sep(kw.get("sep")), header=kw.get("header"),
                        encoding=kw.get("encoding"), rating_range=_range(kw.get("rating_range")))


def _no_rating_column(kw: dict[str, Any]) -> bool:
    """A text file of two columns (user, item) with no --rating-col: interactions, not ratings.
    Says so in a warning, since nothing on the command line asked for it."""
    import os
    import warnings

    from collabkit.errors import DataWarning

    path = kw["ratings"]
    if kw.get("rating_col") is not None or not os.path.isfile(path) or \
            path.lower().endswith((".parquet", ".pq")):
        return False
    with open(path, encoding=kw.get("encoding") or "utf-8-sig", errors="replace") as f:
        first = f.readline()
    sep = _sep(kw.get("sep")) or next((c for c in "\t,;|" if c in first), r"\s+")
    fields = first.split() if sep == r"\s+" else first.split(sep)
    if len([x for x in fields if x.strip()]) != 2:
        return False
    warnings.warn(f"{os.path.basename(path)} has two columns and no rating column, so it is read "
                  "as implicit feedback (each row one interaction, weight 1); pass --implicit to "
                  "say so, or --rating-col if one column holds ratings", DataWarning,
                  stacklevel=2)
    return True


def _load_implicit(kw: dict[str, Any], ts: Any) -> Any:
    """--ratings FILE --implicit: (user, item[, weight][, timestamp]) interactions."""
    from collabkit.data.implicit import read_interactions

    if kw.get("rating_range"):
        raise ConfigError("--rating-range applies to ratings; --implicit data has none (a "
                          "--rating-col is read as a weight or count >= 0)")
    user, item = _col(kw.get("user_col")), _col(kw.get("item_col"))
    if ts is None:  # not given: a column named like a timestamp, when the file has a header
        ts = _timestamp_by_name(kw["ratings"])
    return read_interactions(kw["ratings"], user_col=0 if user is None else user,
                             item_col=1 if item is None else item,
                             weight_col=_col(kw.get("rating_col")),
                             timestamp_col=None if ts is False else ts, sep=_sep(kw.get("sep")))


def _timestamp_by_name(path: str) -> str | None:
    """The header name of a timestamp column (``timestamp``, ``ts``, ``time``), or None."""
    import pandas as pd

    if path.lower().endswith((".parquet", ".pq")):
        return None
    try:
        head = pd.read_csv(path, sep=None, engine="python", nrows=0, encoding="utf-8-sig")
    except Exception:  # unreadable here: read_interactions names the problem
        return None
    return next((str(c) for c in head.columns
                 if str(c).strip().lower() in ("timestamp", "ts", "time")), None)


def _sep(value: str | None) -> str | None:
    """--sep as typed in a shell: '\\t' or 'tab' is a tab, 'whitespace' runs of whitespace."""
    if value is None:
        return None
    return {"\\t": "\t", "tab": "\t", "whitespace": r"\s+"}.get(value.lower(), value)


def _split(kw: dict[str, Any], how: str | None, test_frac: float, seed: int, progress: bool,
           last: int = 1) -> tuple[Any, Any | None]:
    """Load the data and split it. ``how=None``: the data's natural split (gowalla's canonical
    train/test; each user's ``last`` latest rows for implicit data with timestamps; a per-user
    share without; a random share of ratings)."""
    from collabkit.api import CANONICAL, SPLITS, load_split, split

    if how is not None and how not in (*SPLITS, *CANONICAL, "canonical"):  # before any reading
        raise ConfigError(f"unknown --split {how!r}; choose one of {', '.join(SPLITS)}, "
                          f"kfold (train), ml-100k's own {', '.join(CANONICAL)}, or gowalla's "
                          "canonical")
    if last < 1:
        raise ConfigError(f"--last must be at least 1, got {last}")
    gowalla = kw.get("dataset") == "gowalla"
    if how == "canonical" or (how is None and gowalla):
        if not gowalla:
            raise ConfigError("split 'canonical' is gowalla's train.txt/test.txt; use it with "
                              "--dataset gowalla (ml-100k's own splits are u1..u5, ua, ub)")
        return load_split("gowalla", "canonical")
    if how in CANONICAL:
        if not kw.get("dataset"):
            raise ConfigError(f"split {how!r} is ml-100k's own; use it with --dataset ml-100k")
        train, test = load_split(kw["dataset"], how, progress=progress)
        if kw.get("implicit"):
            from collabkit.data.implicit import to_implicit

            train, test = to_implicit(train), to_implicit(test)
        return train, test
    data = _load_data(kw, progress)
    if how is None:
        how = "random" if not data.implicit else "last" if data.timestamps is not None \
            else "user"
    if how == "none":
        return data, None
    return split(data, how, test_frac=test_frac, seed=seed, k=last)


def check_kind(kind: str, data: Any) -> None:
    """Refuse, in flag words, a rating model on implicit data; say so when a ranker reads
    ratings as interaction weights."""
    from collabkit.api import ranker_kinds

    rankers = ranker_kinds()
    if data.implicit and kind not in rankers:
        raise ConfigError(f"--model {kind} predicts ratings, and {data.name or 'the data'} is "
                          "implicit feedback (interactions without ratings); choose --model "
                          f"{' | '.join(rankers)}")
    if not data.implicit and kind in rankers:
        import warnings

        from collabkit.errors import DataWarning

        warnings.warn(f"--model {kind} ranks implicit feedback: the ratings of "
                      f"{data.name or 'the data'} are read as interaction weights "
                      "(confidence); add --implicit to count every rated pair once",
                      DataWarning, stacklevel=2)


def split_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--split, --test-frac and --last, as train, evaluate and tune read them."""
    f = click.option("--last", "last", default=1, show_default=True, metavar="K",
                     help="Rows per user held out by --split last (their K latest).")(f)
    f = click.option("--test-frac", default=0.2, show_default=True,
                     help="Test share for --split random/user/temporal.")(f)
    return click.option(
        "--split", "how", default=None,
        help="random | user (a share of each user's rows) | temporal | last (each user's "
             "latest) | none | ml-100k's u1..u5, ua, ub | gowalla's canonical. Default: random "
             "for ratings; for implicit data canonical (gowalla), last (with timestamps) or "
             "user.")(f)


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    """--json and --quiet."""
    f = click.option("--quiet", "-q", is_flag=True, help="No progress or tables.")(f)
    f = click.option("--json", "as_json", is_flag=True,
                     help="Print one JSON object on stdout (implies --quiet).")(f)
    return f


def parse_params(extra: tuple[str, ...], flag: str = "--param") -> dict[str, Any]:
    """``NAME=VALUE`` pairs (``flag`` repeated) into ``{name: value}``; the one parser.

    Names take ``-`` or ``_``; values become int, float, bool, None, a tuple (``100,50``)
    or stay text. A pair without ``=``, or whose NAME is not a Python name, raises
    :class:`ConfigError` naming the pair and the form (``train`` and ``lr-find`` alike).
    """
    params: dict[str, Any] = {}
    for item in extra:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ConfigError(f"{flag} {item!r} must look like NAME=VALUE, "
                              f"e.g. {flag} n_factors=40")
        params[key] = _value(raw.strip())
    return params


def model_params(est: Any) -> list[str]:
    """The parameters a command line may set on ``est`` (an unfitted model), in its
    constructor's order: what the model reports through ``get_params``, less the progress
    ``callback`` (the CLI's own)."""
    return [k for k in est.get_params() if k != "callback"]


def refuse_unknown_params(est: Any, given: dict[str, str],
                          flags: dict[str, str] | None = None) -> None:
    """Refuse, in one line, every parameter in ``given`` that ``est`` does not take.

    ``given`` maps a parameter name to how the user set it (``"--wd"``, ``"--param wd"``);
    ``flags`` maps the parameters the command has a flag for to that flag. The message names
    what was refused and, in the command's words, every parameter the model does take.
    """
    accepted = model_params(est)
    bad = [how for name, how in given.items() if name not in accepted]
    if bad:
        flags = flags or {}
        takes = [flags[n] for n in accepted if n in flags]
        takes += [f"--param {n}" for n in accepted if n not in flags]
        raise ConfigError(f"model {est.kind!r} does not take {', '.join(bad)}; it takes "
                          f"{', '.join(takes) or 'no parameters'}")


def raw_id(vocab: Any, text: str) -> Any:
    """CLI ids arrive as text; use an int when the model's ids are ints."""
    if vocab.all_ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _value(raw: str) -> Any:
    if "," in raw:
        return tuple(_value(x) for x in raw.split(","))
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
