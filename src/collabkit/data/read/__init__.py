"""Read a ratings table (CSV, TSV, whitespace-separated, Parquet or a DataFrame).

:func:`read_ratings` returns one validated frame with columns ``user``, ``item``, ``rating`` and,
when the source has one, ``timestamp``. Every problem it finds raises :class:`DataError` (or
:class:`FieldError` for a missing column) naming the file, the line as a text editor counts it
(1-based, header included) and what to do about it. It never writes anything.

Plain delimited files are parsed by pyarrow's multithreaded CSV reader with known column types;
whitespace-separated files (``u.data`` style) by pandas' C parser. When a fast parse fails, the
file is parsed again as text so the error can name the exact line and value.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import pandas as pd

from collabkit.data.checks import far_ratings, far_ratings_message
from collabkit.data.read._columns import (
    _PARQUET_SUFFIXES,
    _check_params,
    _from_frame,
    _from_parquet,
    _Specs,
    _Where,
)
from collabkit.data.read._text import _from_text
from collabkit.data.read._validate import _drop_duplicates, _finish
from collabkit.errors import DataError, DataWarning

__all__ = ["read_ratings"]



def read_ratings(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    user_col: str | int | None = None,
    item_col: str | int | None = None,
    rating_col: str | int | None = None,
    timestamp_col: str | int | None | Literal[False] = None,
    sep: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    rating_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Read and validate a table of ratings.

    Parameters
    ----------
    source
        A path to a delimited text file (CSV, TSV, ``|``/``;``/``::``-separated, or separated by
        runs of whitespace like MovieLens ``u.data``), a Parquet file (``.parquet``/``.pq``), or
        a DataFrame.
    user_col, item_col, rating_col
        The column holding each field, by header name or 0-based position. By default the first
        three columns are user, item and rating.
    timestamp_col
        The column holding Unix timestamps (seconds). By default a fourth column, if any, is the
        timestamp; ``False`` ignores it. ISO-8601 date strings are converted to Unix seconds.
    sep
        The field separator of a text file. ``None`` detects it among ``,`` ``\\t`` ``|`` ``;``
        ``::`` and runs of whitespace (pass ``r"\\s+"`` to force the latter).
    header
        Whether the first line of a text file names the columns. ``None`` decides from that line:
        it is a header when its rating field is not a number.
    encoding
        The text encoding of a text file, ``"utf-8"`` by default (a byte-order mark is skipped).
    rating_range
        Inclusive ``(low, high)`` bounds every rating must lie in, e.g. ``(1, 5)``.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item``, ``rating`` (float64) and, when the source has one,
        ``timestamp`` (int64), in source order with a fresh RangeIndex. Ids that are all integers
        (without leading zeros) in a text file become int64, other ids strings; ids from a
        DataFrame or Parquet file keep their type (integers as int64). Integer ids that do not
        fit int64 (such as uint64 ids at or above 2**63) become exact decimal strings, never
        wrapped numbers; a model still finds them when asked with the number. When a
        (user, item) pair occurs more than once only its last row is kept, with a
        :class:`DataWarning`. Without ``rating_range``, ratings far outside the others (more
        than 10 interquartile ranges beyond the middle half, such as ``1e9`` among stars) also
        get a :class:`DataWarning` naming the first one's line.
        Messages locate text rows by line number (1-based, header included) and DataFrame or
        Parquet rows by 0-based position.

    Raises
    ------
    FieldError
        A requested column is not in the source.
    DataError
        The file is missing, empty, undecodable, split by the wrong separator, has a malformed
        line, a missing id, or a missing, non-numeric, infinite or out-of-range rating.
    ConfigError
        A parameter itself is invalid (unknown encoding, bad ``rating_range``, ...).

    Examples
    --------
    >>> ratings = read_ratings("ml-100k/u.data", rating_range=(1, 5))  # doctest: +SKIP
    >>> list(ratings.columns)  # doctest: +SKIP
    ['user', 'item', 'rating', 'timestamp']
    """
    specs: _Specs = {
        "user": user_col,
        "item": item_col,
        "rating": rating_col,
        "timestamp": timestamp_col,
    }
    _check_params(specs, rating_range, encoding)
    if isinstance(source, pd.DataFrame):
        where = _Where("DataFrame")
        raw, infer_ids = _from_frame(source, specs, where), False
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(
                f"{path}: no such file{' (it is a folder)' if path.is_dir() else ''}. "
                "Check the path, or pass a DataFrame."
            )
        if path.suffix.lower() in _PARQUET_SUFFIXES:
            where = _Where(str(path), path)
            raw, infer_ids = _from_parquet(path, specs, where), False
        else:
            raw, where = _from_text(path, specs, sep, header, encoding or "utf-8")
            infer_ids = True
    frame = _finish(raw, where, rating_range, infer_ids)
    if rating_range is None:  # issue 8: a 1e9 among stars is a typo, not a rating
        far = far_ratings(frame["rating"].to_numpy())
        if far is not None:
            warnings.warn(far_ratings_message(where.label, far, where.row), DataWarning,
                          stacklevel=2)
    return _drop_duplicates(frame, where, stacklevel=2)


