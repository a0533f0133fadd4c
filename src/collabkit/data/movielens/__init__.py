"""MovieLens by name: find, download (verified), and read the GroupLens rating data sets.

``load_movielens("ml-100k")`` looks for the extracted data set, in this order:

1. ``data_dir/<name>/`` when ``data_dir`` is given;
2. ``$COLLABKIT_DATA/<name>/``;
3. the copy of ``ml-latest-small`` bundled inside collabkit (its license allows it);
4. the user cache, ``<cache>/movielens/<name>/``, where ``<cache>`` is ``$COLLABKIT_CACHE`` or
   ``platformdirs.user_cache_dir("collabkit")``;

and otherwise downloads the official zip from GroupLens into the cache, checks its SHA-256,
and extracts it atomically (into a temporary folder that is then renamed), so an interrupted
download never leaves a half data set behind, and only a folder collabkit extracted itself is
ever replaced. A folder named like the zip's own top folder
(``ml-10M100K`` for ml-10m) is accepted too.
"""


from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from collabkit.data.movielens import _locate
from collabkit.data.movielens._catalog import (
    _FREE_LICENSE,
    _NO_REDISTRIBUTION,
    _SPECS,
    _SPLITS,
    _spec,
)
from collabkit.data.movielens._locate import (
    _candidates,
    _manual_help,
    cache_path,
    dataset_path,
    download,
    incomplete_copy,
)
from collabkit.data.movielens._readers import (
    _items_100k,
    _items_csv,
    _items_dat,
    _users_1m,
    _users_100k,
)
from collabkit.errors import ConfigError, DatasetNotAvailableError

if TYPE_CHECKING:  # numpy, pandas and the table reader load only when data is read, so that
    import pandas as pd  # `collabkit datasets list/path` start fast

# reading functions import numpy (np), pandas (pd) and read_ratings where they run

__all__ = [
    "MovieLens",
    "DatasetInfo",
    "load_movielens",
    "canonical_split",
    "list_datasets",
    "dataset_path",
    "cache_path",
    "incomplete_copy",
    "download",
]



@dataclass(frozen=True)
class DatasetInfo:
    """What collabkit knows about one MovieLens data set.

    Attributes
    ----------
    name
        The name to pass to :func:`load_movielens`, e.g. ``"ml-100k"``.
    url
        The official GroupLens zip.
    sha256
        The SHA-256 the downloaded zip must have.
    size_bytes
        The size of the zip (the extracted files are several times larger).
    n_ratings
        How many ratings the data set holds.
    redistributable
        Whether its license allows passing the data on (ml-100k, ml-1m and ml-10m: no).
    license
        One line about redistribution; the data set's README has the full terms.
    path
        The folder it would be read from right now, or ``None`` if it would be downloaded.
    """

    name: str
    url: str
    sha256: str
    size_bytes: int
    n_ratings: int
    redistributable: bool
    license: str
    path: Path | None


@dataclass(frozen=True, eq=False)
class MovieLens:
    """One MovieLens data set, read into DataFrames.

    Attributes
    ----------
    name
        The data set's name, e.g. ``"ml-100k"``.
    path
        The folder it was read from.
    ratings
        Columns ``user`` (int64), ``item`` (int64), ``rating`` (float64) and ``timestamp``
        (int64, Unix seconds), in file order.
    items
        Indexed by raw item id (``item``, int64), with columns ``title`` (str, as in the file,
        e.g. ``"Toy Story (1995)"``), ``genres`` (str: genre names joined by ``|``, e.g.
        ``"Animation|Children's|Comedy"``; ``""`` when none is known) and ``year`` (Int64,
        from the title, or for ml-100k from the release date when the title has none; ``<NA>``
        when unknown).
    users
        For ml-100k and ml-1m: indexed by ``user`` (int64), with columns ``age`` (int64; for
        ml-1m the lower bound of the age group: 1 means under 18), ``gender`` (``"M"``/``"F"``),
        ``occupation`` (str) and ``zip`` (str). ``None`` for the other data sets.
    rating_range
        The lowest and highest possible rating, e.g. ``(1.0, 5.0)``.
    """

    name: str
    path: Path
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    rating_range: tuple[float, float]

    def __repr__(self) -> str:
        users = self.ratings["user"].nunique()
        return (
            f"MovieLens({self.name!r}, path={str(self.path)!r}, {len(self.ratings)} ratings, "
            f"{users} users, {len(self.items)} items)"
        )


def list_datasets() -> list[DatasetInfo]:
    """Every MovieLens data set collabkit can load, with where each is available now.

    Returns
    -------
    list of DatasetInfo
        From the smallest to the largest.
    """
    return [
        DatasetInfo(
            name=s.name,
            url=s.url,
            sha256=s.sha256,
            size_bytes=s.size_bytes,
            n_ratings=s.n_ratings,
            redistributable=s.redistributable,
            license=_FREE_LICENSE if s.redistributable else _NO_REDISTRIBUTION,
            path=dataset_path(s.name),
        )
        for s in _SPECS.values()
    ]


def load_movielens(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> MovieLens:
    """Load a MovieLens data set by name, downloading it if needed.

    Parameters
    ----------
    name
        One of ``ml-latest-small``, ``ml-100k``, ``ml-1m``, ``ml-10m``, ``ml-20m``, ``ml-25m``,
        ``ml-32m``.
    data_dir
        A folder searched first, as ``data_dir/<name>/``. The module docstring gives the full
        resolution order.
    download
        Download the data set into the user cache when it is found nowhere.
    progress
        Show a progress bar while downloading.

    Returns
    -------
    MovieLens
        Ratings, items, users (ml-100k and ml-1m) and the rating range.

    Raises
    ------
    DatasetNotAvailableError
        The data set is not on disk and cannot be downloaded (or ``download=False``).
    DataError
        A file of the data set is malformed.
    ConfigError
        The name is not a known data set.

    Examples
    --------
    >>> ml = load_movielens("ml-latest-small")
    >>> ml.ratings.shape
    (100836, 4)
    """
    from collabkit.data.read import read_ratings

    spec = _spec(name)
    path = dataset_path(name, data_dir=data_dir)
    if path is None:
        problem = incomplete_copy(name, data_dir=data_dir)
        if problem is not None:  # the user's folder: never download over it
            raise DatasetNotAvailableError(problem)
        if not download:
            searched = ", ".join(str(p) for p in _candidates(spec, data_dir))
            raise DatasetNotAvailableError(
                f"{name} is not on this machine (looked in: {searched}). Pass download=True to "
                f"fetch it, or {_manual_help(spec)}"
            )
        path = _locate.download(name, progress)
    sep = {"100k": "\t", "dat": "::", "csv": ","}[spec.layout]
    ratings = read_ratings(path / spec.ratings_file, sep=sep, header=spec.layout == "csv",
                           timestamp_col=3, rating_range=spec.rating_range)  # fmt: skip
    users: pd.DataFrame | None
    if spec.layout == "100k":
        items, users = _items_100k(path), _users_100k(path)
    elif spec.layout == "dat":
        items = _items_dat(path / "movies.dat")
        users = _users_1m(path / "users.dat") if (path / "users.dat").is_file() else None
    else:
        items, users = _items_csv(path / "movies.csv"), None
    return MovieLens(spec.name, path, ratings, items, users, spec.rating_range)



def canonical_split(ml: MovieLens, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One of ml-100k's published train/test splits.

    Parameters
    ----------
    ml
        The ml-100k data set, as returned by ``load_movielens("ml-100k")``.
    name
        ``"u1"`` .. ``"u5"`` (five disjoint 80/20 folds) or ``"ua"``/``"ub"`` (exactly ten
        test ratings per user).

    Returns
    -------
    (train, test) : tuple of pandas.DataFrame
        Read from ``<name>.base`` and ``<name>.test``, with the columns of ``ml.ratings``.

    Raises
    ------
    ConfigError
        ``ml`` is not ml-100k, or ``name`` is not one of its splits.
    DatasetNotAvailableError
        The split files are missing from ``ml.path``.
    """
    from collabkit.data.read import read_ratings

    if ml.name != "ml-100k":
        raise ConfigError(f"canonical splits exist only for ml-100k, not {ml.name!r}.")
    if name not in _SPLITS:
        raise ConfigError(f"unknown ml-100k split {name!r}; the splits are {list(_SPLITS)}.")
    parts = []
    for suffix in ("base", "test"):
        file = ml.path / f"{name}.{suffix}"
        if not file.is_file():
            raise DatasetNotAvailableError(
                f"{file} is missing: the ml-100k folder {ml.path} is incomplete. Extract the "
                "whole ml-100k.zip there again."
            )
        parts.append(read_ratings(file, sep="\t", header=False, rating_range=ml.rating_range))
    return parts[0], parts[1]

