"""Parameters and column resolution for :func:`read_ratings`, and where rows come from."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from collabkit.errors import ConfigError, DataError, FieldError

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


