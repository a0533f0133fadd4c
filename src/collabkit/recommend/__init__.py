"""Top-N recommendation and cold start.

The public functions of the submodules are importable from here
(``from collabkit.recommend import genre_start``); each loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collabkit.models._topk import recommend_topk
    from collabkit.recommend.coldstart import recommend_new_user
    from collabkit.recommend.foldin import fold_in_item, fold_in_user, fold_in_users
    from collabkit.recommend.onboarding import genre_start, known_genres, onboarding_items

_WHERE = {
    "recommend_new_user": "coldstart",
    "fold_in_user": "foldin", "fold_in_users": "foldin", "fold_in_item": "foldin",
    "genre_start": "onboarding", "onboarding_items": "onboarding", "known_genres": "onboarding",
    "recommend_topk": "collabkit.models._topk",
}  # fmt: skip

__all__ = [
    "fold_in_item", "fold_in_user", "fold_in_users", "genre_start", "known_genres",
    "onboarding_items", "recommend_new_user", "recommend_topk",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'collabkit.recommend' has no attribute {name!r}")
    where = _WHERE[name]
    module = where if "." in where else f"collabkit.recommend.{where}"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
