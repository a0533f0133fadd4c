"""The service's answer cache: a thread-safe LRU keyed by everything an answer depends on."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["AnswerCache"]


class AnswerCache:
    """A thread-safe LRU of computed answers.

    Keys must hold everything an answer depends on (for recommendations: the model
    fingerprint, the user, their stored ratings, ``k`` and the exclusions), so an entry is
    never stale: new feedback or a reloaded model makes a new key, and old keys age out.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = int(size)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The cached answer for ``key`` (now the most recently used), or None."""
        if self.size <= 0:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` for ``key``, dropping the least recently used beyond ``size``."""
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """``(answer, hit)``; computes outside the lock, so slow answers do not serialise."""
        if self.size <= 0:
            return compute(), False
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key], True
        value = compute()
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value, False
