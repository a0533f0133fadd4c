"""Text sources: sniffing the separator and header, a fast pyarrow parse, a slow fallback that
names the bad line, and encoding errors."""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from collabkit.data.read._columns import (
    _PLAIN_INT_RE,
    _SAMPLE_BYTES,
    _SAMPLE_LINES,
    _SNIFF_SEPS,
    _WHITESPACE,
    _resolve,
    _Specs,
    _Where,
)
from collabkit.errors import DataError, FieldError

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


