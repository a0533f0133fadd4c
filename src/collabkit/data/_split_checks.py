"""Argument checks and per-user grouping helpers of :mod:`collabkit.data.split`."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from collabkit.errors import ConfigError, DataError


def _check_frac(test_frac: float) -> float:
    if isinstance(test_frac, bool) or not isinstance(test_frac, Real) or not 0 < test_frac < 1:
        raise ConfigError(
            f"test_frac={test_frac!r} is outside the open interval (0, 1); pass the share of "
            "rows to hold out, e.g. test_frac=0.2"
        )
    return float(test_frac)


def _check_int(name: str, value: int, low: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}{why}")
    return int(value)


def _check_n_rows(n_rows: int) -> int:
    return _check_int("n_rows", n_rows, 2, " (a split needs at least one train and one test row)")


def _as_1d(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, one entry per rating row; got shape {arr.shape}")
    if arr.size == 0:
        raise ConfigError(f"{name} is empty; a split needs at least 2 rows")
    return arr


def _check_timestamps(timestamps: np.ndarray) -> np.ndarray:
    ts = _as_1d("timestamps", timestamps)
    if ts.dtype.kind not in "iuf":
        raise DataError(
            f"timestamps must be integers or floats, got dtype {ts.dtype}; convert datetimes "
            "with .astype('datetime64[s]').astype('int64')"
        )
    if ts.dtype.kind == "f" and np.isnan(ts).any():
        nan_rows = np.flatnonzero(np.isnan(ts))
        raise DataError(
            f"timestamps has {nan_rows.size} NaN values, the first at row {nan_rows[0]}; "
            "drop or fill those rows before splitting"
        )
    return ts


def _floor_frac(frac: float, counts: np.ndarray | int) -> np.ndarray:
    """``floor(frac * counts)``, rounding the product to 6 decimals first.

    The rounding makes ``0.29 * 100`` give 29 rather than 28 (the float product is
    28.999999999999996); it only moves a product that lies within 5e-7 below an integer.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = np.floor(np.round(frac * counts.astype(np.float64), 6)).astype(np.int64)
    return np.minimum(n, np.maximum(counts - 1, 0))  # frac < 1 never takes a whole group


def _group(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense group codes per row and the row count of each code."""
    if users.dtype.kind in "iu" and users.min() >= 0 and users.max() < 4 * users.size + 1024:
        codes = users.astype(np.int64, copy=False)  # already dense-ish indices: skip the sort
        return codes, np.bincount(codes)
    _, codes, counts = np.unique(users, return_inverse=True, return_counts=True)
    return codes.astype(np.int64, copy=False), counts


def _last_per_group(order: np.ndarray, codes: np.ndarray, counts: np.ndarray,
                    n_take: np.ndarray) -> np.ndarray:
    """Boolean row mask: the last ``n_take[g]`` rows of each group ``g`` in ``order``.

    ``order`` must list all rows grouped by ascending code (any order within a group).
    """
    sorted_codes = codes[order]
    block_end = np.cumsum(counts)  # exclusive end of each group's block in `order`
    from_end = block_end[sorted_codes] - np.arange(order.size)  # 1 for a group's last row
    mask = np.zeros(order.size, dtype=bool)
    mask[order[from_end <= n_take[sorted_codes]]] = True
    return mask


def _random_order(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All rows grouped by ascending code, in random order within each group."""
    n = codes.size
    perm = rng.permutation(n)
    if (int(codes.max()) + 1) * n < 2**62:
        # One unstable sort of a unique key: faster than a stable sort, and unique keys make
        # the result the same on every platform.
        return np.argsort(codes * n + perm)
    return perm[np.argsort(codes[perm], kind="stable")]
