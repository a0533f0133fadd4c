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

import codecs
import csv
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from collabkit.data.checks import exact_int_ids, far_ratings, far_ratings_message
from collabkit.errors import ConfigError, DataError, DataWarning, FieldError

__all__ = ["read_ratings"]

_SNIFF_SEPS = ("\t", ",", ";", "|", "::")  # tried in this order; then runs of whitespace
_WHITESPACE = r"\s+"
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 50
_INT_RE = re.compile(r"[+-]?\d+")
_PLAIN_INT_RE = re.compile(r"-?(?:0|[1-9]\d*)")  # ids read as int64 only without leading zeros
_NA_TOKENS = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "<na>"})
_ROLES = ("user", "item", "rating", "timestamp")
_Specs = dict[str, str | int | None | Literal[False]]  # role -> the caller's column choice


@dataclass(frozen=True)
class _Where:
    """Where rows come from, to turn row positions into "line 7" or "row 6" in messages."""

    label: str
    path: Path | None = None
    header_line: int = 0  # 1-based line of the header in a text file (0: none)

    @property
    def is_text(self) -> bool:
        return self.path is not None and self.path.suffix.lower() not in _PARQUET_SUFFIXES

    def rows(self, positions: Sequence[int]) -> list[str]:
        """Describe data rows by position: ``line N`` in text files, ``row N`` otherwise."""
        if not self.is_text or self.path is None:
            return [f"row {p}" for p in positions]
        return [f"line {n}" for n in _line_numbers(self.path, self.header_line, positions)]

    def row(self, position: int) -> str:
        return self.rows([position])[0]


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


# ---------------------------------------------------------------------------------------------
# parameters and column resolution


def _check_params(
    specs: _Specs,
    rating_range: tuple[float, float] | None,
    encoding: str | None,
) -> None:
    for role, spec in specs.items():
        if spec is False and role == "timestamp":
            continue
        if isinstance(spec, bool) or not (spec is None or isinstance(spec, str | int)):
            raise ConfigError(
                f"{role}_col={spec!r}: give a column name (str) or 0-based position (int)"
                + (", or False to ignore it." if role == "timestamp" else ".")
            )
    chosen = [s for s in specs.values() if s is not None and s is not False]
    if len(chosen) != len(set(chosen)):
        raise ConfigError(f"the same column is chosen twice: {specs}. Give each role its own.")
    if rating_range is not None:
        lo, hi = rating_range
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ConfigError(
                f"rating_range={rating_range!r}: need finite (low, high), low < high."
            )
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"encoding={encoding!r} is not a known text encoding.") from None


def _resolve(
    specs: _Specs,
    names: list[str],
    has_names: bool,
    where: _Where,
) -> dict[str, int]:
    """Map each role to a column position (roles without a column are left out)."""
    positions: dict[str, int] = {}
    shown = names if has_names else list(range(len(names)))
    for default, role in enumerate(_ROLES):
        spec = specs[role]
        if spec is False:
            continue
        if spec is None:
            if default < len(names):
                positions[role] = default
            elif role != "timestamp":
                raise FieldError(
                    f"{where.label}: no {role} column: found only {len(names)} column(s) "
                    f"{shown}, but user, item and rating need three. Check the separator, "
                    f"or name the columns with user_col=, item_col=, rating_col=."
                )
        elif isinstance(spec, int):
            if not 0 <= spec < len(names):
                raise FieldError(
                    f"{where.label}: {role}_col={spec} is out of range: the columns are "
                    f"{shown} (positions 0..{len(names) - 1})."
                )
            positions[role] = spec
        elif not has_names:
            raise FieldError(
                f"{where.label}: {role}_col={spec!r} names a column, but the file has no header "
                f"line. Choose the column by 0-based position (0..{len(names) - 1}), or pass "
                "header=True if the first line holds the column names."
            )
        elif spec not in names:
            raise FieldError(
                f"{where.label}: no column named {spec!r} for the {role}; the columns are "
                f"{names}. Pass {role}_col= one of these names or a 0-based position."
            )
        else:
            positions[role] = names.index(spec)
    if len(set(positions.values())) != len(positions):
        raise ConfigError(f"{where.label}: two roles resolve to the same column: {positions}.")
    return positions


# ---------------------------------------------------------------------------------------------
# DataFrame and Parquet sources


def _from_frame(frame: pd.DataFrame, specs: _Specs, where: _Where) -> dict[str, pd.Series]:
    positions = _resolve(specs, [str(c) for c in frame.columns], True, where)
    if len(frame) == 0:
        raise DataError(f"{where.label}: the table has no rows; it needs one row per rating.")
    return {role: frame.iloc[:, pos].reset_index(drop=True) for role, pos in positions.items()}


def _from_parquet(path: Path, specs: _Specs, where: _Where) -> dict[str, pd.Series]:
    try:
        names = list(pq.read_schema(path).names)
        positions = _resolve(specs, names, True, where)
        table = pq.read_table(path, columns=[names[p] for p in positions.values()])
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: cannot read it as Parquet ({exc}). If it is a text table, give it a "
            ".csv/.tsv/.txt name."
        ) from exc
    if table.num_rows == 0:
        raise DataError(f"{path}: the table has no rows; it needs one row per rating.")
    frame = table.to_pandas()
    return {role: frame.iloc[:, i] for i, role in enumerate(positions)}


# ---------------------------------------------------------------------------------------------
# text sources


@dataclass(frozen=True)
class _Layout:
    sep: str
    header: bool
    names: list[str]
    header_line: int
    sample: list[list[str]]  # split data lines from the start of the file


def _from_text(
    path: Path,
    specs: _Specs,
    sep: str | None,
    header: bool | None,
    encoding: str,
) -> tuple[dict[str, pd.Series], _Where]:
    layout = _sniff(path, specs, sep, header, encoding)
    where = _Where(str(path), path, layout.header_line)
    positions = _resolve(specs, layout.names, layout.header, where)
    try:
        raw = _parse_fast(path, layout, positions, encoding)
    except (pa.ArrowInvalid, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        raw = _parse_slow(path, layout, positions, encoding)
    if len(raw["user"]) == 0:
        what = "a header line but no rating lines" if layout.header else "no rating lines"
        raise DataError(f"{path}: the file has {what}. It needs one line per rating.")
    return raw, where


def _sniff(
    path: Path,
    specs: _Specs,
    sep: str | None,
    header: bool | None,
    encoding: str,
) -> _Layout:
    """Find separator, header and column names from the first lines of the file."""
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
        at_eof = not fh.read(1)
    if not head.strip():
        raise DataError(
            f"{path}: the file is empty. A ratings file needs one line per rating: "
            "user, item, rating and optionally a timestamp."
        )
    _check_not_binary(path, head, encoding)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(head, final=at_eof)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding) or DataError(f"{path}: {exc}") from exc
    lines = text.lstrip("\ufeff").splitlines()
    if not at_eof and len(lines) > 1:
        lines = lines[:-1]  # possibly cut in the middle
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()][:_SAMPLE_LINES]
    if sep is None:
        sep = _detect_sep(path, [line for _, line in numbered])
    split = [_split(line, sep) for _, line in numbered]
    if len(split[0]) < 3:
        better = _guess_sep([line for _, line in numbered])
        if len(split[0]) == 1 or (better is not None and better != sep):
            hint = f"It looks {better!r}-separated: pass sep={better!r}" if better else "Pass sep="
            raise DataError(
                f"{path}: sep={sep!r} finds only {len(split[0])} column(s) on line "
                f"{numbered[0][0]} ({numbered[0][1][:80]!r}), but a ratings file needs user, "
                f"item and rating. {hint} (or sep=None to detect the separator)."
            )
    if header is None:
        header = _looks_like_header(split[0], specs)
    names = [f.strip() for f in split[0]] if header else [str(i) for i in range(len(split[0]))]
    header_line = numbered[0][0] if header else 0
    return _Layout(sep, header, names, header_line, split[1:] if header else split)


def _looks_like_header(first: list[str], specs: _Specs) -> bool:
    if any(isinstance(s, str) for s in specs.values()):
        return True
    pos = specs["rating"] if isinstance(specs["rating"], int) else 2
    return pos < len(first) and not _is_number(first[pos])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split(line: str, sep: str) -> list[str]:
    if sep == _WHITESPACE:
        return line.split()
    if len(sep) == 1:
        return next(csv.reader([line], delimiter=sep))
    return line.split(sep)


def _guess_sep(lines: list[str], min_columns: int = 3) -> str | None:
    """The first candidate separator that splits most lines into the same columns (>= 3)."""
    for sep in (*_SNIFF_SEPS, _WHITESPACE):
        counts = [len(_split(line, sep)) for line in lines]
        mode = max(set(counts), key=counts.count)
        if mode >= min_columns and counts.count(mode) >= 0.5 * len(counts):
            return sep
    return None


_MAGIC = (  # leading bytes of binary formats a ratings file is sometimes mistaken for
    (b"PAR1", "a Parquet file: give it a .parquet name"),
    (b"PK\x03\x04", "a zip archive (or an .xlsx workbook): extract it, or export it as CSV"),
    (b"\x1f\x8b", "gzip-compressed: decompress it first"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office file: export it as CSV"),
    (b"SQLite format 3", "an SQLite database: export the ratings table as CSV"),
)


def _check_not_binary(path: Path, head: bytes, encoding: str) -> None:
    """A binary file is not an encoding problem: say what it looks like instead."""
    what = next((text for magic, text in _MAGIC if head.startswith(magic)), None)
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))  # NULs are text there
    nul = -1 if wide else head.find(b"\x00")
    if what is None and nul < 0:
        return
    if what is None and head[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return  # UTF-32 text with a byte-order mark: decoding decides
    if what is None and head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return  # UTF-16 text
    raise DataError(
        f"{path}: this is not a text table: it looks like "
        + (what or f"binary data (a NUL byte at byte offset {nul})")
        + ". A ratings file is text with one line per rating (user, item, rating), or Parquet."
    )


def _detect_sep(path: Path, lines: list[str]) -> str:
    sep = _guess_sep(lines)
    if sep is None and (two := _guess_sep(lines, min_columns=2)) is not None:
        raise FieldError(
            f"{path}: no rating column: every line has only 2 fields ({two!r}-separated; the "
            f"first is {lines[0][:80]!r}), but a ratings file needs user, item and rating. "
            "Add a rating column (for clicks or purchases without ratings, a column of 1s)."
        )
    if sep is None:
        raise DataError(
            f"{path}: cannot detect the separator: none of ',', '\\t', ';', '|', '::' or "
            f"whitespace splits the first lines into the same three or more columns. The first "
            f"line is {lines[0][:80]!r}. Pass sep= explicitly."
        )
    return sep


def _id_type(sample: list[list[str]], pos: int) -> pa.DataType:
    values = [row[pos].strip() for row in sample if pos < len(row)]
    if values and all(_PLAIN_INT_RE.fullmatch(v) for v in values):
        return pa.int64()
    return pa.string()


def _parse_fast(
    path: Path, layout: _Layout, positions: dict[str, int], encoding: str
) -> dict[str, pd.Series]:
    """Parse with known column types; raises on anything unexpected (then _parse_slow runs)."""
    types = {
        "user": _id_type(layout.sample, positions["user"]),
        "item": _id_type(layout.sample, positions["item"]),
        "rating": pa.float64(),
        "timestamp": _id_type(layout.sample, positions.get("timestamp", 0)),
    }
    if layout.sep == _WHITESPACE:
        dtypes = {p: ("int64" if types[r] == pa.int64() else "str") for r, p in positions.items()}
        dtypes[positions["rating"]] = "float64"
        frame = pd.read_csv(
            path, sep=_WHITESPACE, header=None, skiprows=layout.header_line,
            usecols=list(positions.values()), dtype=dtypes, encoding=encoding, engine="c",
        )  # fmt: skip
        return {role: frame[pos] for role, pos in positions.items()}
    if layout.sep == "::":  # MovieLens .dat: split on ':' and keep the even columns
        width = 2 * len(layout.names) - 1
        if any(len(row) != len(layout.names) or ":" in "".join(row) for row in layout.sample):
            raise ValueError("fields contain ':'")
        col = {role: 2 * pos for role, pos in positions.items()}
        delimiter = ":"
    elif len(layout.sep) == 1:
        width, col, delimiter = len(layout.names), dict(positions), layout.sep
    else:
        raise ValueError("multi-character separator: parsed by the slow path")
    names = [f"c{i}" for i in range(width)]
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=layout.header_line, encoding=encoding,
            block_size=1 << 24,
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=[names[c] for c in col.values()],
            column_types={names[col[r]]: types[r] for r in col},
        ),
    )  # fmt: skip
    return {role: table.column(names[c]).to_pandas() for role, c in col.items()}


def _parse_slow(
    path: Path, layout: _Layout, positions: dict[str, int], encoding: str
) -> dict[str, pd.Series]:
    """Parse every field as text, so that validation can name the exact bad line and value."""
    multi = len(layout.sep) > 1 and layout.sep != _WHITESPACE
    try:
        frame = pd.read_csv(
            path, sep=re.escape(layout.sep) if multi else layout.sep, header=None,
            skiprows=layout.header_line, dtype=str,  # all columns: extra fields are errors
            na_filter=False, keep_default_na=False, encoding=encoding,
            engine="python" if multi else "c", skipinitialspace=layout.sep != _WHITESPACE,
        )  # fmt: skip
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding) or DataError(f"{path}: {exc}") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, saw = match.groups()
            raise DataError(
                f"{path}, line {line}: {saw} fields where earlier lines have {expected} "
                f"(separator {layout.sep!r}). Fix that line; if a field contains the separator, "
                "quote it."
            ) from exc
        raise DataError(f"{path}: cannot parse the file ({exc}). Check sep= and header=.") from exc
    for role, pos in positions.items():
        if pos not in frame.columns:
            raise DataError(
                f"{path}: the {role} should be column {pos}, but the first data line has only "
                f"{frame.shape[1]} fields. Check the header and the separator (sep={layout.sep!r})."
            )
    return {role: frame[pos] for role, pos in positions.items()}


def _encoding_error(path: Path, encoding: str) -> DataError | None:
    """Locate the first undecodable byte (for ASCII-compatible encodings) and explain it."""
    offset = 0
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                column = len(line[: exc.start].decode(encoding, errors="replace")) + 1
                bad = line[exc.start : exc.end]
                return DataError(
                    f"{path}, line {lineno}, column {column} (byte offset "
                    f"{offset + exc.start}): byte(s) {bad!r} are not valid {encoding}. The file "
                    f"is in another encoding, most often latin-1 or cp1252: pass "
                    f'encoding="latin-1" (or the encoding it was written in).'
                )
            offset += len(line)
    return None


def _line_numbers(path: Path, header_line: int, positions: Sequence[int]) -> list[int]:
    """1-based line numbers of data rows, skipping blank lines as the parsers do."""
    if not _has_blank_lines(path):
        return [header_line + 1 + int(p) for p in positions]
    wanted = sorted(set(int(p) for p in positions))
    found: dict[int, int] = {}
    row = -1
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno <= header_line or not line.strip():
                continue
            row += 1
            if row == wanted[len(found)]:
                found[row] = lineno
                if len(found) == len(wanted):
                    break
    return [found.get(int(p), header_line + 1 + int(p)) for p in positions]


def _has_blank_lines(path: Path) -> bool:
    with path.open("rb") as fh:
        previous = b"\n"
        while chunk := fh.read(1 << 24):
            block = previous + chunk
            if b"\n\n" in block or b"\n\r\n" in block:
                return True
            previous = block[-2:]
    return False


# ---------------------------------------------------------------------------------------------
# validation


def _first_bad(mask: np.ndarray | pd.Series) -> tuple[int, int]:
    """Position of the first True and how many Trues there are."""
    values = np.asarray(mask, dtype=bool)
    return int(values.argmax()), int(values.sum())


def _more(count: int) -> str:
    return f" ({count - 1} more like it)" if count > 1 else ""


def _is_textual(series: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
    ) and not pd.api.types.is_datetime64_any_dtype(series.dtype)


def _missing(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy()
    if _is_textual(series):
        text = series.astype("str").str.strip().str.lower()
        missing = missing | text.isin(_NA_TOKENS).to_numpy()
    return missing


def _finish(
    raw: dict[str, pd.Series],
    where: _Where,
    rating_range: tuple[float, float] | None,
    infer_ids: bool,
) -> pd.DataFrame:
    columns = {
        "user": _ids(raw["user"], "user", where, infer_ids),
        "item": _ids(raw["item"], "item", where, infer_ids),
        "rating": _ratings(raw["rating"], where, rating_range),
    }
    if "timestamp" in raw:
        columns["timestamp"] = _timestamps(raw["timestamp"], where)
    # copy=False keeps one block per column: stacking them into one 2-D block costs a full copy
    return pd.DataFrame({k: v.reset_index(drop=True) for k, v in columns.items()}, copy=False)


def _ids(series: pd.Series, role: str, where: _Where, infer: bool) -> pd.Series:
    if _is_textual(series):
        missing = series.isna().to_numpy() | (series.astype("str").str.strip() == "").to_numpy()
    else:
        missing = series.isna().to_numpy()
    if missing.any():
        pos, count = _first_bad(missing)
        raise DataError(
            f"{where.label}, {where.row(pos)}: the {role} id is missing{_more(count)}. Every "
            "rating needs a user and an item: fill it in or delete that line."
        )
    if pd.api.types.is_integer_dtype(series.dtype):
        return exact_int_ids(series)
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy()
        if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
            return series.astype("int64")
        return series.astype("str")
    if not _is_textual(series):
        return series.astype("str")
    if not infer:
        if pd.api.types.infer_dtype(series, skipna=False) == "integer":
            return exact_int_ids(series)
        return series.astype("str")
    text = series.astype("str").str.strip()
    if text.str.fullmatch(_PLAIN_INT_RE.pattern).all():
        try:
            return text.astype("int64")
        except (OverflowError, ValueError):
            pass
    return text


def _ratings(
    series: pd.Series, where: _Where, rating_range: tuple[float, float] | None
) -> pd.Series:
    if _is_textual(series):
        missing = _missing(series)
        numbers = pd.to_numeric(series.astype("str").str.strip(), errors="coerce")
        bad = numbers.isna().to_numpy() & ~missing
        if bad.any():
            pos, count = _first_bad(bad)
            raise DataError(
                f"{where.label}, {where.row(pos)}: rating {series.iloc[pos]!r} is not a "
                f"number{_more(count)}. Fix that line, or pick the rating column with rating_col=."
            )
        series = numbers
    values = series.astype("float64")
    array = values.to_numpy()
    if np.isnan(array).any():
        pos, count = _first_bad(np.isnan(array))
        raise DataError(
            f"{where.label}, {where.row(pos)}: the rating is missing (empty or NaN){_more(count)}. "
            "Fill it in or delete that line."
        )
    if np.isinf(array).any():
        pos, count = _first_bad(np.isinf(array))
        raise DataError(
            f"{where.label}, {where.row(pos)}: rating {array[pos]} is not finite{_more(count)}. "
            "Fix that line."
        )
    if rating_range is not None:
        lo, hi = rating_range
        outside = (array < lo) | (array > hi)
        if outside.any():
            pos, count = _first_bad(outside)
            raise DataError(
                f"{where.label}, {where.row(pos)}: rating {array[pos]:g} is outside "
                f"rating_range=({lo:g}, {hi:g}){_more(count)}. Fix the data, or widen rating_range."
            )
    return values


def _timestamps(series: pd.Series, where: _Where) -> pd.Series:
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("int64")
    missing = _missing(series)
    if missing.any():
        pos, count = _first_bad(missing)
        raise DataError(
            f"{where.label}, {where.row(pos)}: the timestamp is missing{_more(count)}. Fill it "
            "in, or pass timestamp_col=False to ignore timestamps."
        )
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _datetimes_to_seconds(series)
    if _is_textual(series):
        text = series.astype("str").str.strip()
        if text.str.fullmatch(_INT_RE.pattern).all():
            return text.astype("int64")
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().all():
            series = numbers
        else:
            dates = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
            if dates.isna().any():
                neither = dates.isna().to_numpy() & numbers.isna().to_numpy()
                pos, count = _first_bad(neither if neither.any() else dates.isna())
                raise DataError(
                    f"{where.label}, {where.row(pos)}: timestamp {series.iloc[pos]!r} is "
                    f"neither Unix seconds nor an ISO-8601 date{_more(count)}. Fix it, or pass "
                    "timestamp_col=False to ignore timestamps."
                )
            return _datetimes_to_seconds(dates)
    values = series.astype("float64").to_numpy()
    if not np.isfinite(values).all():
        pos, count = _first_bad(~np.isfinite(values))
        raise DataError(
            f"{where.label}, {where.row(pos)}: timestamp {values[pos]} is not finite"
            f"{_more(count)}. Fix it, or pass timestamp_col=False."
        )
    return pd.Series(np.floor(values).astype("int64"), index=series.index)


def _datetimes_to_seconds(series: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(series, utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.astype("int64")


def _drop_duplicates(frame: pd.DataFrame, where: _Where, stacklevel: int) -> pd.DataFrame:
    """Keep the last row of each (user, item) pair; warn with the first repeated pair."""
    dropped = _duplicated(frame)
    if dropped is None:
        return frame
    first = int(dropped.argmax())
    user, item = (_plain(frame[c].iat[first]) for c in ("user", "item"))
    tail = frame.iloc[first + 1 :]
    again = first + 1 + int(((tail["user"] == user) & (tail["item"] == item)).to_numpy().argmax())
    lines = where.rows([first, again])
    warnings.warn(
        f"{where.label}: {int(dropped.sum())} duplicate (user, item) row(s) dropped, keeping the "
        f"last rating of each pair. First: user {user!r}, item {item!r} on {lines[0]} and "
        f"{lines[1]}. Deduplicate the input to silence this warning.",
        DataWarning,
        stacklevel=stacklevel + 1,
    )
    return frame.loc[~dropped].reset_index(drop=True)


def _duplicated(frame: pd.DataFrame) -> np.ndarray | None:
    """Mask of rows to drop (all but the last of each (user, item) pair), None if none."""
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    if users.dtype.kind == "i" and items.dtype.kind == "i":
        u0, i0 = int(users.min()), int(items.min())
        span = int(items.max()) - i0 + 1
        if (int(users.max()) - u0 + 1) * span < 2**63:
            key = (users - u0) * span + (items - i0)
            if (key[1:] > key[:-1]).all():  # sorted by (user, item), like most MovieLens files
                return None
            ordered = np.sort(key)  # cheaper than hashing when (as usual) nothing repeats
            if not (ordered[1:] == ordered[:-1]).any():
                return None
            return pd.Series(key).duplicated(keep="last").to_numpy()
    dropped = frame.duplicated(["user", "item"], keep="last").to_numpy()
    return dropped if dropped.any() else None


def _plain(value: object) -> object:
    """numpy scalars as plain Python values, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value
