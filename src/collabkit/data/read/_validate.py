"""Validation of the parsed columns: ids, ratings, timestamps and duplicate pairs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from collabkit.data.checks import exact_int_ids
from collabkit.data.read._columns import _INT_RE, _NA_TOKENS, _PLAIN_INT_RE, _Where
from collabkit.errors import DataError, DataWarning

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
