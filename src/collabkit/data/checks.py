"""Plausibility checks on ratings and ids that would otherwise give silently wrong answers.

Issue 8: ratings far outside the others (:func:`far_ratings`), ratings outside a model's
scale (:func:`refuse_outside_range`), integer ids beyond int64 (:func:`exact_int_ids`).

A rating of ``1e9`` among stars is a typo, and a model trained on it recommends items that all
"score" in the millions. Without an explicit ``rating_range`` nothing says which values are
legal, so :func:`far_ratings` applies a robust rule: a rating is *far* when it lies more than
:data:`FAR_IQR` interquartile ranges beyond the middle half of the ratings. On any star scale
(1-5, 0.5-5, 1-10) no legal rating is far; a value typed with extra digits is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from collabkit.errors import DataError

__all__ = ["FAR_IQR", "FarRatings", "exact_int_ids", "far_ratings", "far_ratings_message",
           "refuse_outside_range"]

#: how many interquartile ranges beyond the quartiles make a rating "far"
FAR_IQR = 10.0
_SAMPLE = 200_000  # quartiles of a strided sample: exact enough, and cheap at 25M ratings


@dataclass(frozen=True)
class FarRatings:
    """Ratings outside ``[low, high]``: how many, the first one's position and value."""

    count: int
    first: int
    value: float
    q1: float
    q3: float
    low: float
    high: float


def far_ratings(values: np.ndarray) -> FarRatings | None:
    """The ratings far outside the others (see the module docstring), or None.

    When the middle half holds a single value (an interquartile range of 0, e.g. mostly 1s),
    the spread used is ``max(|median|, 1)``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 4:
        return None
    sample = values[:: max(1, values.size // _SAMPLE)]
    q1, med, q3 = (float(q) for q in np.quantile(sample, [0.25, 0.5, 0.75]))
    spread = q3 - q1 if q3 > q1 else max(abs(med), 1.0)
    low, high = q1 - FAR_IQR * spread, q3 + FAR_IQR * spread
    if values.min() >= low and values.max() <= high:  # the common case: two reductions
        return None
    far = (values < low) | (values > high)
    first = int(far.argmax())
    return FarRatings(int(far.sum()), first, float(values[first]), q1, q3, low, high)


def far_ratings_message(label: str, found: FarRatings, row: Callable[[int], str]) -> str:
    """The warning text: where the first far rating is, how many there are, what to do."""
    more = f" ({found.count - 1} more like it)" if found.count > 1 else ""
    return (
        f"{label}, {row(found.first)}: rating {found.value:g} is far outside the other "
        f"ratings (half of them lie between {found.q1:g} and {found.q3:g}){more}. A model "
        f"trained on it predicts nonsense. If it is a typo, fix it; if your scale really "
        f"reaches it, pass rating_range=(low, high) to say so (and to silence this warning)."
    )


def refuse_outside_range(values: np.ndarray, ids: np.ndarray, what: str,
                         rating_range: tuple[float, float]) -> None:
    """Raise :class:`DataError` naming the first rating outside the model's ``rating_range``.

    A fold-in rating of 100 on a 1-5 scale would push every prediction to the top.
    """
    lo, hi = rating_range
    outside = (values < lo) | (values > hi)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        more = f" ({int(outside.sum()) - 1} more like it)" if outside.sum() > 1 else ""
        key = ids[bad].item() if isinstance(ids[bad], np.generic) else ids[bad]
        raise DataError(f"rating {values[bad]:g} for {what} {key!r} is outside the model's "
                        f"rating range {lo:g} to {hi:g}{more}; give ratings on the scale the "
                        "model was trained on")


def exact_int_ids(series: pd.Series) -> pd.Series:
    """Integer ids as int64, or, when some lie outside int64 (uint64 ids at or above 2**63,
    which a cast would wrap to negative numbers), all as exact decimal strings."""
    if series.dtype == np.int64:
        return series
    try:
        if series.dtype.kind == "u" and int(series.max()) >= 2**63:
            raise OverflowError
        return series.astype("int64")
    except OverflowError:
        return series.map(lambda v: str(int(v))).astype("str")
