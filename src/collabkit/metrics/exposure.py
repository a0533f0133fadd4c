r"""Exposure of a served catalogue: what a recommender actually showed, summarised.

Every function reads a *log of served lists*: a DataFrame with one row per recommended item,

==========  ==================================================================================
column      meaning
==========  ==================================================================================
``time``    when the list was served: datetimes, or numbers read as Unix seconds
``user``    who it was served to
``item``    the item shown
``rank``    its 1-based position in the list
``tier``    which tier answered (``personal``, ``bias``, ``popularity``, ``model``, ...)
==========  ==================================================================================

A *list* is the rows sharing ``(time, user)``, or sharing ``list_id`` when the log has that
column. These are the numbers ``/metrics`` and ``collabkit loop-report`` print (issue 11), so
both come from one implementation:

* **catalog coverage**: distinct items served / catalogue size;
* **exposure Gini**: the Gini coefficient of the number of times each catalogue item was
  served (items never served count as 0): 0 when every item was shown equally often, near 1
  when a few items take all the exposure. With counts :math:`x_{(1)} \le \dots \le x_{(n)}`,
  :math:`G = \frac{\sum_j (2j - n - 1)\, x_{(j)}}{n \sum_j x_{(j)}}`;
* **mean popularity percentile**: each served row's item popularity as a percentile of the
  catalogue (``pandas.Series.rank(pct=True)`` × 100, ties averaged, so the most popular item
  is 100), averaged over served rows;
* **share of lists by tier**: the tier of a list is the tier of its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError, DataError

__all__ = [
    "LOG_COLUMNS",
    "check_log",
    "catalog_coverage",
    "exposure_gini",
    "gini",
    "popularity_percentiles",
    "mean_popularity_percentile",
    "tier_shares",
    "exposure_report",
]

LOG_COLUMNS = ("time", "user", "item", "rank", "tier")


def _py(x: Any) -> Any:
    """A numpy scalar as its Python value, so messages read ``0``, not ``np.int64(0)``."""
    return x.item() if isinstance(x, np.generic) else x


def check_log(log: pd.DataFrame) -> pd.DataFrame:
    """Validate a served-list log and return it with ``time`` as UTC datetimes.

    Raises
    ------
    DataError
        A column is missing, a rank is not a positive integer or a time cannot be read; the
        message names the column and the first bad row.
    """
    if not isinstance(log, pd.DataFrame):
        raise DataError(f"the served-list log must be a DataFrame with columns "
                        f"{list(LOG_COLUMNS)}, got {type(log).__name__}")
    missing = [c for c in LOG_COLUMNS if c not in log.columns]
    if missing:
        raise DataError(f"the served-list log lacks column(s) {missing}; it has "
                        f"{list(log.columns)} and needs {list(LOG_COLUMNS)}")
    rank = pd.to_numeric(log["rank"], errors="coerce")
    bad = ~(rank.notna() & (rank >= 1) & (rank == np.floor(rank)))
    if bad.any():
        j = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"rank {_py(log['rank'].iloc[j])!r} in row {j} of the served-list log is "
                        "not a positive integer; ranks start at 1")
    for col in ("user", "item", "tier"):
        nulls = log[col].isna().to_numpy()
        if nulls.any():
            raise DataError(f"column {col!r} of the served-list log is empty in row "
                            f"{int(np.flatnonzero(nulls)[0])}")
    out = log.copy()
    out["time"] = _as_time(log["time"])
    return out


def _as_time(col: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        t = pd.to_datetime(col, utc=True)
    elif pd.api.types.is_numeric_dtype(col):
        t = pd.to_datetime(col, unit="s", utc=True)
    else:
        t = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    bad = t.isna().to_numpy()
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(f"time {_py(col.iloc[j])!r} in row {j} of the served-list log is not a "
                        "date or Unix seconds")
    return t


def _catalog_index(catalog: Sequence[Any] | np.ndarray | pd.Index | int | None,
                   log: pd.DataFrame) -> pd.Index | int:
    if catalog is None:
        return pd.Index(pd.unique(log["item"]))
    if isinstance(catalog, int | np.integer):
        if catalog < 1:
            raise ConfigError(f"catalog must be a positive size or a sequence of item ids, "
                              f"got {catalog!r}")
        return int(catalog)
    idx = pd.Index(catalog)
    if idx.has_duplicates:
        raise ConfigError(f"catalog lists item {_py(idx[idx.duplicated()][0])!r} twice")
    return idx


def catalog_coverage(log: pd.DataFrame,
                     catalog: Sequence[Any] | np.ndarray | pd.Index | int) -> float:
    """Share of the catalogue that was served at least once.

    Parameters
    ----------
    log : DataFrame
        The served-list log (see the module docstring); only ``item`` is read.
    catalog : int or sequence of item ids
        The catalogue size, or its item ids (then served items outside it are not counted).
    """
    cat = _catalog_index(catalog, log)
    served = pd.unique(log["item"])
    if isinstance(cat, int):
        return float(len(served) / cat)
    return float(cat.isin(served).sum() / len(cat)) if len(cat) else 0.0


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 equal, towards 1 concentrated)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0.0:
        return 0.0
    j = np.arange(1, n + 1)
    return float(np.sum((2 * j - n - 1) * x) / (n * total))


def exposure_gini(log: pd.DataFrame,
                  catalog: Sequence[Any] | np.ndarray | pd.Index | int | None = None) -> float:
    """Gini of how often each catalogue item was served; unserved catalogue items count 0.

    ``catalog`` as in :func:`catalog_coverage`; ``None`` uses only the served items.
    """
    cat = _catalog_index(catalog, log)
    counts = log["item"].value_counts()
    if isinstance(cat, int):
        if len(counts) > cat:
            raise ConfigError(f"catalog size {cat} is smaller than the {len(counts)} distinct "
                              "items served")
        x = np.concatenate([counts.to_numpy(), np.zeros(cat - len(counts))])
    else:
        x = counts.reindex(cat, fill_value=0).to_numpy()
    return gini(x)


def popularity_percentiles(popularity: pd.Series) -> pd.Series:
    """Each item's popularity as a percentile of the catalogue (ties averaged; top = 100).

    ``popularity`` is indexed by item id (for example training ratings per item).
    """
    return popularity.astype(np.float64).rank(pct=True, method="average") * 100.0


def mean_popularity_percentile(log: pd.DataFrame, popularity: pd.Series) -> float:
    """Mean popularity percentile of the served rows (NaN for an empty log).

    Raises
    ------
    DataError
        A served item is missing from ``popularity`` (the message names it).
    """
    if len(log) == 0:
        return float("nan")
    pct = popularity_percentiles(popularity).reindex(log["item"])
    if pct.isna().any():
        j = int(np.flatnonzero(pct.isna().to_numpy())[0])
        raise DataError(f"served item {_py(log['item'].iloc[j])!r} (row {j}) has no popularity; "
                        "give popularity for every catalogue item")
    return float(pct.mean())


def _list_keys(log: pd.DataFrame) -> list[str]:
    return ["list_id"] if "list_id" in log.columns else ["time", "user"]


def tier_shares(log: pd.DataFrame) -> dict[str, float]:
    """Share of served lists answered by each tier, e.g. ``{"personal": 0.75, ...}``.

    Raises
    ------
    DataError
        A list mixes tiers (its rows disagree).
    """
    if len(log) == 0:
        return {}
    per_list = log.groupby(_list_keys(log), sort=False)["tier"].agg(["first", "nunique"])
    mixed = per_list["nunique"] > 1
    if mixed.any():
        raise DataError(f"served list {per_list.index[mixed.to_numpy()][0]!r} mixes tiers; "
                        "every row of a list must carry the tier that answered it")
    shares = per_list["first"].value_counts(normalize=True)
    return {str(k): float(v) for k, v in shares.sort_index().items()}


def exposure_report(log: pd.DataFrame, *,
                    catalog: Sequence[Any] | np.ndarray | pd.Index | int,
                    popularity: pd.Series | None = None,
                    window: str | pd.Timedelta | None = None) -> pd.DataFrame:
    """All exposure numbers, per time window and overall.

    Parameters
    ----------
    log : DataFrame
        The served-list log (see the module docstring).
    catalog : int or sequence of item ids
        The catalogue served from.
    popularity : Series, optional
        Popularity per item id (e.g. training ratings per item); without it the
        ``mean_popularity_pct`` column is NaN.
    window : str or Timedelta, optional
        A pandas frequency such as ``"1h"`` or ``"1D"``: windows start at multiples of it
        (UTC). ``None`` gives only the overall row.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty window (``window_start``) and a last row ``"all"``: ``n_lists``,
        ``n_served``, ``coverage``, ``gini``, ``mean_popularity_pct`` and ``share_<tier>`` for
        every tier in the log.
    """
    log = check_log(log)
    tiers = sorted(str(t) for t in pd.unique(log["tier"]))
    rows: list[dict[str, Any]] = []
    if window is not None:
        try:
            start = log["time"].dt.floor(window)
        except (ValueError, TypeError):
            raise ConfigError(f"window {window!r} is not a pandas frequency such as '1h' or "
                              "'1D'") from None
        for key, part in log.groupby(start, sort=True):
            rows.append({"window_start": key, **_summary(part, catalog, popularity, tiers)})
    rows.append({"window_start": "all", **_summary(log, catalog, popularity, tiers)})
    return pd.DataFrame(rows)


def _summary(log: pd.DataFrame, catalog: Any, popularity: pd.Series | None,
             tiers: list[str]) -> dict[str, Any]:
    shares = tier_shares(log)
    n_lists = int(log.groupby(_list_keys(log), sort=False).ngroups) if len(log) else 0
    return {
        "n_lists": n_lists,
        "n_served": int(len(log)),
        "coverage": catalog_coverage(log, catalog),
        "gini": exposure_gini(log, catalog),
        "mean_popularity_pct": (float("nan") if popularity is None
                                else mean_popularity_percentile(log, popularity)),
        **{f"share_{t}": shares.get(t, 0.0) for t in tiers},
    }
