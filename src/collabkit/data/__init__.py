"""Reading ratings: any table with :func:`read_ratings`, MovieLens by name."""

from collabkit.data.implicit import (
    load_gowalla,
    read_adjacency,
    read_interactions,
    to_implicit,
)
from collabkit.data.movielens import (
    DatasetInfo,
    MovieLens,
    canonical_split,
    dataset_path,
    download,
    list_datasets,
    load_movielens,
)
from collabkit.data.tables import read_ratings

__all__ = [
    "read_ratings",
    "load_movielens",
    "MovieLens",
    "DatasetInfo",
    "canonical_split",
    "list_datasets",
    "dataset_path",
    "download",
    "read_interactions",
    "read_adjacency",
    "to_implicit",
    "load_gowalla",
]
