"""Raw ids outside, dense indices inside: the :class:`Vocabulary`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import DataError, UnknownIdError

__all__ = ["Vocabulary"]


def _as_id_array(ids: Any) -> np.ndarray:
    """Turn a scalar, list, Series or array of raw ids into a 1-D numpy array."""
    if isinstance(ids, pd.Series | pd.Index):
        return ids.to_numpy()
    if np.isscalar(ids) or isinstance(ids, str):
        return np.asarray([ids])
    arr = np.asarray(ids)
    return arr.reshape(-1)


def _py(x: Any) -> Any:
    """A numpy scalar as the plain Python value, so messages read ``42``, not ``np.int64(42)``."""
    return x.item() if isinstance(x, np.generic) else x


class Vocabulary:
    """A bijection between raw ids (ints or strings) and dense indices ``0..n-1``.

    Lookups are hash based (a :class:`pandas.Index`), so mapping millions of ids is one
    vectorised call. Unknown ids map to ``-1`` with :meth:`index`, or raise with
    :meth:`index_strict`.

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
        uniq = pd.unique(_as_id_array(values) if not isinstance(values, np.ndarray) else values)
        try:
            uniq = np.sort(uniq)
        except TypeError:  # mixed types: keep first-appearance order
            pass
        return cls(uniq)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw_id: object) -> bool:
        return raw_id in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._index[:3].tolist())
        more = ", ..." if len(self) > 3 else ""
        return f"Vocabulary({len(self)} ids: {head}{more})"

    def index(self, ids: Any) -> np.ndarray:
        """Dense indices of ``ids`` (int64); ``-1`` where an id is unknown."""
        arr = _as_id_array(ids)
        if arr.dtype.kind in "iu" and self._index.dtype == object:
            arr = arr.astype(object)
        return self._index.get_indexer(arr).astype(np.int64, copy=False)

    def index_strict(self, ids: Any, *, what: str = "id") -> np.ndarray:
        """Like :meth:`index` but raise :class:`UnknownIdError` naming the first unknown id."""
        idx = self.index(ids)
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            first = _py(_as_id_array(ids)[bad[0]])
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
        """A JSON-ready description: ``{"kind": "int" | "str", "ids": [...]}``."""
        arr = self._index.to_numpy()
        if arr.dtype.kind in "iu":
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
