"""Reading ratings: any table with :func:`read_ratings`, MovieLens by name.

Names load on first use, so ``collabkit.data.movielens`` (dataset listing) starts without
pandas or pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collabkit.data.movielens import (
        DatasetInfo,
        MovieLens,
        canonical_split,
        dataset_path,
        download,
        list_datasets,
        load_movielens,
    )
    from collabkit.data.read import read_ratings

__all__ = [
    "read_ratings",
    "load_movielens",
    "MovieLens",
    "DatasetInfo",
    "canonical_split",
    "list_datasets",
    "dataset_path",
    "download",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'collabkit.data' has no attribute {name!r}")
    module = "collabkit.data.read" if name == "read_ratings" else "collabkit.data.movielens"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
