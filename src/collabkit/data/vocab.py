"""Raw ids outside, dense indices inside: the :class:`Vocabulary`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import DataError, UnknownIdError

__all__ = ["Vocabulary"]


_PLAIN_INT = r"[+-]?(?:0|[1-9]\d*)"  # "42" names user 42; "042" stays a string id, as at load


def as_id_array(ids: Any) -> np.ndarray:
    """Turn a scalar, list, Series or array of raw ids into a 1-D numpy array.

    A list mixing numbers and strings stays an object array (``[1, "alice"]`` keeps the int
    ``1``; ``np.asarray`` would turn it into the string ``"1"``).
    """
    if isinstance(ids, pd.Series | pd.Index):
        return ids.to_numpy()
    if np.isscalar(ids) or isinstance(ids, str):
        return pd.Series([ids]).to_numpy()
    if isinstance(ids, np.ndarray):
        return ids.reshape(-1)
    return pd.Series(list(np.asarray(ids, dtype=object).reshape(-1))).to_numpy()


def _py(x: Any) -> Any:
    """A numpy scalar as the plain Python value, so messages read ``42``, not ``np.int64(42)``."""
    return x.item() if isinstance(x, np.generic) else x


def _as_ints(arr: np.ndarray) -> np.ndarray:
    """Integers spelled as strings (or whole floats) as an object array of ints; else None."""
    out = np.full(len(arr), None, dtype=object)
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2**63)
        out[whole] = arr[whole].astype(np.int64)
        return out
    if arr.dtype.kind in "iub":
        return out
    text = pd.Series(arr, dtype=object).astype(str).str.strip()
    ok = text.str.fullmatch(_PLAIN_INT).to_numpy(dtype=bool)
    if ok.any():
        try:
            out[ok] = text[ok].astype(np.int64).to_numpy()
        except (OverflowError, ValueError):  # beyond int64: cannot name an int64 id anyway
            out[ok] = [int(t) if -(2**63) <= int(t) < 2**63 else None for t in text[ok]]
    return out


class Vocabulary:
    """A bijection between raw ids (ints or strings) and dense indices ``0..n-1``.

    Lookups are hash based (a :class:`pandas.Index`), so mapping millions of ids is one
    vectorised call. Unknown ids map to ``-1`` with :meth:`index`, or raise with
    :meth:`index_strict`.

    Ids are matched row by row: one unknown id (or one of another type) in a batch leaves the
    other rows matched. A number and its decimal string name the same id whichever type the
    vocabulary holds (``42``, ``"42"``, ``" 42 "`` and ``42.0`` all find user ``42``; ``42``
    finds user ``"42"``), and string ids are also tried stripped of surrounding spaces, as
    :func:`collabkit.read_ratings` strips them at load.

    Parameters
    ----------
    ids : sequence
        Distinct raw ids, in index order. Use :meth:`from_values` to build one from a column
        with repeats.

    Examples
    --------
    >>> v = Vocabulary.from_values([10, 3, 10, 7])
    >>> v.index([7, 10, 99]).tolist()
    [1, 2, -1]
    >>> v.ids([0, 1]).tolist()
    [3, 7]
    """

    __slots__ = ("_index",)

    def __init__(self, ids: Sequence[Any] | np.ndarray | pd.Index) -> None:
        index = pd.Index(ids)
        if index.has_duplicates:
            dup = index[index.duplicated()][0]
            raise DataError(f"vocabulary ids must be distinct; {dup!r} appears more than once")
        self._index = index

    @classmethod
    def from_values(cls, values: Iterable[Any] | np.ndarray) -> Vocabulary:
        """Build a vocabulary of the distinct values, sorted when they are comparable."""
        uniq = pd.unique(as_id_array(values) if not isinstance(values, np.ndarray) else values)
        try:
            uniq = np.sort(uniq)
        except TypeError:  # mixed types: keep first-appearance order
            pass
        return cls(uniq)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw_id: object) -> bool:
        return bool(self.index([raw_id])[0] >= 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._index[:3].tolist())
        more = ", ..." if len(self) > 3 else ""
        return f"Vocabulary({len(self)} ids: {head}{more})"

    def index(self, ids: Any) -> np.ndarray:
        """Dense indices of ``ids`` (int64); ``-1`` where an id is unknown.

        Exact matches are one hash lookup; only the unmatched remainder is retried with the
        other type (number <-> string) and without surrounding spaces.
        """
        arr = as_id_array(ids)
        idx = self._get(arr)
        miss = idx < 0
        if miss.any():
            idx[miss] = self._get(self._loose(arr[miss]))
        return idx

    def _get(self, arr: np.ndarray) -> np.ndarray:
        if arr.dtype.kind in "iu" and self._index.dtype == object:
            arr = arr.astype(object)
        elif arr.dtype.kind in "US" and self._index.dtype.kind in "iuf":
            return np.full(len(arr), -1, dtype=np.int64)
        return np.array(self._index.get_indexer(arr), dtype=np.int64)

    def _loose(self, arr: np.ndarray) -> np.ndarray:
        """``arr`` spelled the way this vocabulary spells ids (unmatchable values: None)."""
        if self._index.dtype.kind in "iu":
            return _as_ints(arr)
        if arr.dtype.kind == "f":  # 42.0 -> "42"
            whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2**63)
            text = arr.astype(str).astype(object)
            text[whole] = arr[whole].astype(np.int64).astype(str)
            return text
        if arr.dtype == object:  # whole Python floats among other ids: 7.0 -> 7
            arr = np.array([int(x) if isinstance(x, float) and x.is_integer() else x
                            for x in arr.tolist()], dtype=object)
        return pd.Series(arr, dtype=object).astype(str).str.strip().to_numpy(dtype=object)

    def index_strict(self, ids: Any, *, what: str = "id") -> np.ndarray:
        """Like :meth:`index` but raise :class:`UnknownIdError` naming the first unknown id."""
        idx = self.index(ids)
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            first = _py(as_id_array(ids)[bad[0]])
            raise UnknownIdError(
                f"unknown {what} {first!r} ({bad.size} unknown in all); the model was trained "
                f"on {len(self)} {what}s such as {_py(self._index[0])!r}. Check the id's type "
                "(e.g. 42 vs '42') or whether it only appears in held-out data."
            )
        return idx

    def ids(self, index: Any) -> np.ndarray:
        """Raw ids at the given dense indices."""
        return self._index.to_numpy()[np.asarray(index, dtype=np.int64)]

    @property
    def all_ids(self) -> np.ndarray:
        """All raw ids in index order."""
        return self._index.to_numpy()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"kind": "int" | "str", "ids": [...]}``.

        Unsigned ids beyond int64 are written as exact strings, never wrapped (issue 8).
        """
        arr = self._index.to_numpy()
        if arr.dtype.kind == "i" or (arr.dtype.kind == "u" and (not arr.size
                                                                or int(arr.max()) < 2**63)):
            return {"kind": "int", "ids": arr.astype(np.int64).tolist()}
        return {"kind": "str", "ids": [str(x) for x in arr.tolist()]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Vocabulary:
        """Inverse of :meth:`to_json`."""
        kind = obj.get("kind")
        ids = obj.get("ids")
        if kind not in ("int", "str") or not isinstance(ids, list):
            raise DataError(f"bad vocabulary record: kind={kind!r}; expected 'int' or 'str'")
        if kind == "int":
            return cls(np.asarray(ids, dtype=np.int64))
        return cls(pd.Index(ids, dtype=object))
