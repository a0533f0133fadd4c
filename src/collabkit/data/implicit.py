"""Implicit feedback: interactions without ratings (clicks, plays, check-ins, purchases).

An implicit table is an ordinary :class:`~collabkit.data.interactions.Interactions` whose
``implicit`` flag is set: ``ratings`` then holds each interaction's *weight* (1.0 when the
source has none, or a count such as the number of plays), and ``rating_range`` is the observed
range of the weights. Models that rank items (:mod:`collabkit.models.implicit`) read the weights
as confidence; nothing treats them as stars.

Sources:

- :func:`read_interactions`: a DataFrame, CSV/TSV/Parquet file with ``user``, ``item`` and
  optionally a weight (or count) and a timestamp column;
- :func:`read_adjacency`: the ``user item item ...`` text format of the NGCF/LightGCN
  benchmarks (one line per user);
- :func:`to_implicit`: explicit ratings turned into interactions (every rating, or those at
  least ``threshold``);
- :func:`load_gowalla`: the Gowalla check-in benchmark with its canonical train/test split.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.errors import DataError, DatasetNotAvailableError, DataWarning

__all__ = ["read_interactions", "read_adjacency", "to_implicit", "load_gowalla",
           "gowalla_path"]

_PARQUET = {".parquet", ".pq"}


def _build(users: np.ndarray, items: np.ndarray, weights: np.ndarray,
           timestamps: np.ndarray | None, name: str,
           vocabs: tuple[Vocabulary, Vocabulary] | None = None) -> Interactions:
    uv, iv = vocabs if vocabs is not None else (Vocabulary.from_values(users),
                                                Vocabulary.from_values(items))
    w = weights.astype(np.float32)
    return Interactions(users=uv.index(users), items=iv.index(items), ratings=w,
                        user_vocab=uv, item_vocab=iv, timestamps=timestamps,
                        rating_range=(float(w.min()), float(w.max())), name=name,
                        implicit=True)


def _py(x: object) -> object:
    """A numpy scalar as the plain Python value, so messages read ``42``, not ``np.int64(42)``."""
    return x.item() if isinstance(x, np.generic) else x


def _row_label(where: str, pos: int, header_lines: int) -> str:
    """``file.csv line 7`` for a text file, ``DataFrame row 5`` otherwise."""
    if header_lines < 0:
        return f"{where} row {pos}"
    return f"{where} line {pos + 1 + header_lines}"


def read_interactions(source: str | os.PathLike[str] | pd.DataFrame, *,
                      user_col: str | int = 0, item_col: str | int = 1,
                      weight_col: str | int | None = None,
                      timestamp_col: str | int | None = None,
                      sep: str | None = None, name: str | None = None) -> Interactions:
    """Read (user, item[, weight][, timestamp]) interactions into an implicit table.

    Parameters
    ----------
    source
        A DataFrame, a Parquet file (``.parquet``/``.pq``) or a delimited text file (CSV, TSV,
        ...; the separator is detected unless ``sep`` is given). A text file's first line is a
        header when its item field is not an integer.
    user_col, item_col
        Columns of the user and item ids, by name or 0-based position.
    weight_col
        Column of a non-negative weight or count per interaction; ``None`` gives every
        interaction weight 1.
    timestamp_col
        Column of Unix timestamps (seconds), or ``None``.
    name
        A label for reports; the file name by default.

    Returns
    -------
    Interactions
        With ``implicit=True``. A (user, item) pair that occurs more than once becomes one
        interaction whose weight is the sum (a count, with no weight column) and whose timestamp
        is the latest, with a :class:`~collabkit.errors.DataWarning`.

    Raises
    ------
    DataError
        The file is missing or empty, a column is absent, an id is missing, or a weight is
        negative, missing or not a number; the message names the file and line (or the
        DataFrame row) and the column.
    """
    header_lines = -1
    if isinstance(source, pd.DataFrame):
        frame, where = source, "DataFrame"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise DataError(f"{path}: no such file; check the path, or pass a DataFrame")
        if path.suffix.lower() in _PARQUET:
            frame = pd.read_parquet(path)
        else:
            frame, header_lines = _read_text(path, sep, item_col)
        name = name or path.name
    if len(frame) == 0:
        raise DataError(f"{where} holds no interactions; there is nothing to learn from")
    cols = {}
    for role, spec in (("user", user_col), ("item", item_col), ("weight", weight_col),
                       ("timestamp", timestamp_col)):
        if spec is None:
            continue
        if isinstance(spec, int) and spec not in frame.columns:
            if not 0 <= spec < frame.shape[1]:
                raise DataError(f"{where}: {role}_col={spec} but the table has "
                                f"{frame.shape[1]} columns; pass a position below that or a "
                                "column name")
            cols[role] = frame.iloc[:, spec]
        elif spec in frame.columns:
            cols[role] = frame[spec]
        else:
            raise DataError(f"{where}: no column {spec!r} for {role}_col; columns are "
                            f"{[str(c) for c in frame.columns]}")
    for role in ("user", "item"):
        miss = cols[role].isna().to_numpy()
        if miss.any():
            pos = int(np.flatnonzero(miss)[0])
            raise DataError(f"{_row_label(where, pos, header_lines)}: the {role} id in column "
                            f"{cols[role].name!r} is missing ({int(miss.sum())} rows in all); "
                            "drop those rows or fill the ids")
    if "weight" in cols:
        w = pd.to_numeric(cols["weight"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(f"{_row_label(where, pos, header_lines)}: weight "
                            f"{_py(cols['weight'].iloc[pos])!r} in column {cols['weight'].name!r} "
                            "is not a finite number >= 0; fix it, or leave weight_col out to "
                            "count every interaction once")
    else:
        w = np.ones(len(frame))
    ts = None
    if "timestamp" in cols:
        t = pd.to_numeric(cols["timestamp"], errors="coerce")
        if t.isna().any():
            pos = int(np.flatnonzero(t.isna().to_numpy())[0])
            raise DataError(f"{_row_label(where, pos, header_lines)}: timestamp "
                            f"{_py(cols['timestamp'].iloc[pos])!r} is not a number of seconds")
        ts = t.to_numpy(dtype=np.int64)
    users, items, w, ts = _merge_duplicates(cols["user"].to_numpy(), cols["item"].to_numpy(),
                                            w, ts, where)
    return _build(users, items, w, ts, name or "dataframe")


def _read_text(path: Path, sep: str | None, item_col: str | int) -> tuple[pd.DataFrame, int]:
    """A delimited text file as strings-or-ints, and the number of header lines (0 or 1)."""
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    if not first.strip():
        raise DataError(f"{path}: the first line is empty; the file holds no interactions")
    if sep is None:
        sep = next((s for s in ("\t", ",", ";", "|") if s in first), r"\s+")
    fields = first.strip().split(sep) if sep != r"\s+" else first.split()
    header = isinstance(item_col, str) or not all(
        f.strip().lstrip("-").isdigit() for f in fields[:2])
    try:
        frame = pd.read_csv(path, sep=sep, header=0 if header else None, engine="python"
                            if sep == r"\s+" else "c", skip_blank_lines=False,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as {sep!r}-separated text ({e}); pass sep=") \
            from None
    return frame, int(header)


def _merge_duplicates(users: np.ndarray, items: np.ndarray, w: np.ndarray,
                      ts: np.ndarray | None, where: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    df = pd.DataFrame({"u": users, "i": items, "w": w})
    if ts is not None:
        df["t"] = ts
    dup = df.duplicated(["u", "i"], keep=False).to_numpy()
    if not dup.any():
        return users, items, w, ts
    agg = {"w": "sum", **({"t": "max"} if ts is not None else {})}
    merged = df.groupby(["u", "i"], sort=False, as_index=False).agg(agg)
    pos = int(np.flatnonzero(dup)[0])
    warnings.warn(f"{where}: {len(df) - len(merged)} repeated (user, item) pairs (the first "
                  f"user {_py(users[pos])!r}, item {_py(items[pos])!r}) were merged into one "
                  "interaction each, weights summed", DataWarning, stacklevel=3)
    return (merged["u"].to_numpy(), merged["i"].to_numpy(), merged["w"].to_numpy(),
            merged["t"].to_numpy() if ts is not None else None)


def _parse_adjacency(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such file; an adjacency list has one line per user: "
                        "'user item item ...'")
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = np.array(parts, dtype=np.int64)
            except ValueError:
                bad = next(p for p in parts if not p.lstrip("-").isdigit())
                raise DataError(f"{path} line {lineno}: {bad!r} is not an integer id; each "
                                "line is 'user item item ...' separated by spaces") from None
            users.append(np.full(len(ids) - 1, ids[0]))
            items.append(ids[1:])
    if not users:
        raise DataError(f"{path}: the file holds no lines of 'user item item ...'")
    return np.concatenate(users), np.concatenate(items)


def read_adjacency(*paths: str | os.PathLike[str], name: str | None = None
                   ) -> tuple[Interactions, ...]:
    """Read adjacency-list files (``user item item ...`` per line) into implicit tables.

    The NGCF/LightGCN benchmarks ship ``train.txt`` and ``test.txt`` in this format. Pass them
    together so the tables share one vocabulary (an item seen only in the test file keeps its
    index). A line with a user and no items is allowed (the user has no interactions there).

    Returns
    -------
    tuple of Interactions
        One table per path, in order, all with ``implicit=True`` and weight 1.

    Raises
    ------
    DataError
        A file is missing or empty, or a field is not an integer (file and line named), or a
        (user, item) pair repeats within a file.
    """
    if not paths:
        raise DataError("read_adjacency needs at least one file path")
    parsed = [_parse_adjacency(Path(p)) for p in paths]
    for p, (u, i) in zip(paths, parsed, strict=True):
        keys = u * (int(i.max(initial=0)) + 1) + i
        if np.unique(keys).size != keys.size:
            raise DataError(f"{p}: a user lists the same item twice; each item may appear once "
                            "per line")
    uv = Vocabulary.from_values(np.concatenate([u for u, _ in parsed]))
    iv = Vocabulary.from_values(np.concatenate([i for _, i in parsed]))
    label = name or Path(paths[0]).parent.name
    return tuple(_build(u, i, np.ones(len(u)), None, label, (uv, iv)) for u, i in parsed)


def to_implicit(data: Interactions, threshold: float | None = None) -> Interactions:
    """Explicit ratings as implicit interactions: every rated pair, or those rated >= threshold.

    The vocabularies are kept (a user whose ratings all fall below the threshold stays known but
    has no interactions); metadata and timestamps carry over; every weight becomes 1.

    Raises
    ------
    DataError
        No rating reaches ``threshold``.
    """
    if data.implicit:
        return data
    keep = (np.arange(len(data)) if threshold is None
            else np.flatnonzero(data.ratings >= float(threshold)))
    if keep.size == 0:
        raise DataError(f"no rating of {data.name or 'this data'} is >= {threshold} (ratings "
                        f"span {data.rating_range}); lower the threshold")
    out = data.take(keep)
    return replace(out, ratings=np.ones(keep.size, dtype=np.float32), rating_range=(1.0, 1.0),
                   implicit=True)


def gowalla_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding Gowalla's ``train.txt`` and ``test.txt``.

    Looked for in ``data_dir``/gowalla, then ``$COLLABKIT_DATA``/gowalla.

    Raises
    ------
    DatasetNotAvailableError
        Neither holds both files (Gowalla is not downloaded automatically).
    """
    roots = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("COLLABKIT_DATA"):
        roots.append(Path(os.environ["COLLABKIT_DATA"]))
    for root in roots:
        for folder in (root / "gowalla", root):
            if (folder / "train.txt").is_file() and (folder / "test.txt").is_file():
                return folder
    tried = ", ".join(str(r / "gowalla") for r in roots) or "nowhere (no data_dir given)"
    raise DatasetNotAvailableError(
        f"gowalla not found (looked in {tried}); put the LightGCN split's train.txt and "
        "test.txt in <folder>/gowalla/ and set COLLABKIT_DATA=<folder> or pass data_dir=")


def load_gowalla(data_dir: str | os.PathLike[str] | None = None
                 ) -> tuple[Interactions, Interactions]:
    """Gowalla check-ins (LightGCN/NGCF split) as ``(train, test)`` implicit tables.

    29,858 users, 40,981 items, 810,128 train and 217,242 test interactions sharing one
    vocabulary. Evaluate with full ranking: rank every item a user has no train interaction
    with (:func:`collabkit.metrics.fullrank.evaluate_ranking`).
    """
    folder = gowalla_path(data_dir)
    train, test = read_adjacency(folder / "train.txt", folder / "test.txt", name="gowalla")
    return train, test
