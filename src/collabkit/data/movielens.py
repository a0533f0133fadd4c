"""MovieLens by name: find, download (verified), and read the GroupLens rating data sets.

``load_movielens("ml-100k")`` looks for the extracted data set, in this order:

1. ``data_dir/<name>/`` when ``data_dir`` is given;
2. ``$COLLABKIT_DATA/<name>/``;
3. the copy of ``ml-latest-small`` bundled inside collabkit (its license allows it);
4. the user cache, ``<cache>/movielens/<name>/``, where ``<cache>`` is ``$COLLABKIT_CACHE`` or
   ``platformdirs.user_cache_dir("collabkit")``;

and otherwise downloads the official zip from GroupLens into the cache, checks its SHA-256,
and extracts it atomically (into a temporary folder that is then renamed), so an interrupted
download never leaves a half data set behind. A folder named like the zip's own top folder
(``ml-10M100K`` for ml-10m) is accepted too.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import platformdirs

from collabkit._version import __version__
from collabkit.errors import ConfigError, DataError, DatasetNotAvailableError

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

_BASE_URL = "https://files.grouplens.org/datasets/movielens"
_YEAR_RE = r".*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)"  # the last "(1995)" or "(2006-2007)"
_NO_GENRES = frozenset({"(no genres listed)", "unknown"})
_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_FREE_LICENSE = "may be redistributed, under the same license conditions (see its README)"
_NO_REDISTRIBUTION = "may NOT be redistributed without permission from GroupLens"
# ml-1m users.dat codes its occupations (README of ml-1m); ml-100k spells them out.
_ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip


@dataclass(frozen=True)
class _Spec:
    name: str
    folder: str  # top folder inside the zip
    sha256: str
    size_bytes: int  # of the zip
    n_ratings: int
    layout: Literal["100k", "dat", "csv"]
    rating_range: tuple[float, float]
    redistributable: bool

    @property
    def url(self) -> str:
        return f"{_BASE_URL}/{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        return {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}[self.layout]

    @property
    def required(self) -> tuple[str, ...]:
        """The files a folder must hold to count as this data set."""
        if self.layout == "100k":
            return ("u.data", "u.item", "u.genre", "u.user")
        return (self.ratings_file, "movies.dat" if self.layout == "dat" else "movies.csv")

    def is_in(self, folder: Path) -> bool:
        return all((folder / name).is_file() for name in self.required)


# SHA-256 of each official zip, with its size in bytes. Sources (all agree where they overlap):
# - ml-latest-small, ml-100k, ml-1m, ml-20m, ml-25m: tensorflow/datasets,
#   tensorflow_datasets/url_checksums/movielens.txt (url, size, sha256); the same values are
#   hard-coded in ISG-Siegen/OmniRec src/omnirec/data_loaders/movielens_{100k,small,large}.py.
#   ml-100k's is also recorded in shared/datasets/ml-100k/PROVENANCE.md.
# - ml-10m: ISG-Siegen/OmniRec src/omnirec/data_loaders/movielens_small.py, and two more
#   public projects that pin the same sha256 and size (65,566,137 bytes) next to GroupLens'
#   published MD5 ce571fd55effeba0271552578f2648bd (ml-10m.zip.md5).
# - ml-32m: pinned, with size 238,950,008 bytes, by many independent public projects (data
#   manifests and loaders); its size matches the one recorded next to GroupLens' published
#   MD5 d472be332d4daa821edc399621853b57 (ml-32m.zip.md5).
# ml-latest-small is a "development" data set that GroupLens may regenerate; this hash is the
# 2018-09-26 release (100,836 ratings), the one bundled with collabkit.
_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in (
        _Spec("ml-latest-small", "ml-latest-small",
              "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
              978_202, 100_836, "csv", (0.5, 5.0), True),
        _Spec("ml-100k", "ml-100k",
              "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
              4_924_029, 100_000, "100k", (1.0, 5.0), False),
        _Spec("ml-1m", "ml-1m",
              "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
              5_917_549, 1_000_209, "dat", (1.0, 5.0), False),
        _Spec("ml-10m", "ml-10M100K",
              "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
              65_566_137, 10_000_054, "dat", (0.5, 5.0), False),
        _Spec("ml-20m", "ml-20m",
              "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
              198_702_078, 20_000_263, "csv", (0.5, 5.0), True),
        _Spec("ml-25m", "ml-25m",
              "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
              261_978_986, 25_000_095, "csv", (0.5, 5.0), True),
        _Spec("ml-32m", "ml-32m",
              "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
              238_950_008, 32_000_204, "csv", (0.5, 5.0), True),
    )
}  # fmt: skip


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


# ---------------------------------------------------------------------------------------------
# finding data sets


def _spec(name: str) -> _Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigError(
            f"unknown MovieLens data set {name!r}; known names are {sorted(_SPECS)}."
        ) from None


def _cache_root() -> Path:
    root = os.environ.get("COLLABKIT_CACHE") or platformdirs.user_cache_dir("collabkit")
    return Path(root) / "movielens"


def _bundled_root() -> Path | None:
    root = resources.files("collabkit") / "datasets"
    return root if isinstance(root, Path) else None


def _candidates(spec: _Spec, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get("COLLABKIT_DATA"):
        roots.append(Path(os.environ["COLLABKIT_DATA"]))
    bundled = _bundled_root()
    if spec.name == "ml-latest-small" and bundled is not None:
        roots.append(bundled)
    roots.append(_cache_root())
    names = dict.fromkeys((spec.name, spec.folder))
    return [root / name for root in roots for name in names]


def dataset_path(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder a MovieLens data set would be read from now, or ``None``.

    A folder counts when it holds the data set's ratings and item files.

    Parameters
    ----------
    name
        A known data set name (see :func:`list_datasets`).
    data_dir
        A folder searched first, as ``data_dir/<name>/``.

    Returns
    -------
    pathlib.Path or None
        The first folder, in resolution order, that holds the data set's ratings file.

    Raises
    ------
    ConfigError
        The name is not a known data set.
    """
    spec = _spec(name)
    return next((f for f in _candidates(spec, data_dir) if spec.is_in(f)), None)


def cache_path(name: str) -> Path:
    """The folder :func:`download` puts a data set in: ``<cache>/movielens/<name>/``."""
    return _cache_root() / _spec(name).name


def incomplete_copy(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """What is wrong with a local copy of ``name`` that lacks files, or None if there is none.

    Folders under ``data_dir`` and ``$COLLABKIT_DATA`` count; the cache does not
    (:func:`download` replaces an incomplete cached copy itself).
    """
    spec = _spec(name)
    cache = _cache_root()
    for folder in _candidates(spec, data_dir):
        if folder.parent == cache or not folder.is_dir() or spec.is_in(folder):
            continue
        missing = [n for n in spec.required if not (folder / n).is_file()]
        return (
            f"{folder} is an incomplete copy of {spec.name}: it lacks {', '.join(missing)} "
            f"(a complete one holds {', '.join(spec.required)}). Extract the whole "
            f"{spec.url.rsplit('/', 1)[-1]} there again, or move that folder away to have "
            "collabkit download the data set into its cache."
        )
    return None


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


# ---------------------------------------------------------------------------------------------
# downloading


def download(name: str, progress: bool = True) -> Path:
    """Download, verify and extract a MovieLens data set into the user cache.

    Parameters
    ----------
    name
        A known data set name (see :func:`list_datasets`).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    pathlib.Path
        ``<cache>/movielens/<name>/``. If it is already there, nothing is downloaded.

    Raises
    ------
    DatasetNotAvailableError
        The download failed (the message names the URL, the reason and where to put the files
        by hand), or the zip does not have the expected SHA-256 (it is deleted).
    ConfigError
        The name is not a known data set.
    """
    spec = _spec(name)
    target = _cache_root() / spec.name
    if spec.is_in(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.name}-", suffix=".zip")
    zip_path = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(spec, out, progress)
        if digest != spec.sha256:
            raise DatasetNotAvailableError(
                f"the file downloaded from {spec.url} has SHA-256 {digest}, not the expected "
                f"{spec.sha256}; it was deleted. The download may have been corrupted or the "
                "server sent something else: try again later, or see " + _manual_help(spec)
            )
        _extract(spec, zip_path, target)
    finally:
        zip_path.unlink(missing_ok=True)
    return target


def _manual_help(spec: _Spec) -> str:
    return (
        f"to install it by hand, download {spec.url} (SHA-256 {spec.sha256}) and extract it so "
        f"that {_cache_root() / spec.name / spec.ratings_file} exists; or extract it as "
        f"<folder>/{spec.name}/ and set the environment variable COLLABKIT_DATA=<folder> "
        "(or pass data_dir=<folder>)."
    )


def _fetch(spec: _Spec, out: BinaryIO, progress: bool) -> str:
    """Stream the zip into ``out`` and return its SHA-256."""
    request = urllib.request.Request(spec.url, headers={"User-Agent": f"collabkit/{__version__}"})
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(progress, total, spec.name) as advance:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetNotAvailableError(
            f"could not download {spec.name} from {spec.url}: {reason}. If this machine is "
            f"offline, {_manual_help(spec)}"
        ) from exc
    return digest.hexdigest()


@contextlib.contextmanager
def _progress_bar(show: bool, total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn(f"downloading {label}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _extract(spec: _Spec, zip_path: Path, target: Path) -> None:
    """Extract the zip's top folder into a temporary folder, then rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{spec.name}-extract-"))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = [m for m in archive.namelist() if m.startswith(f"{spec.folder}/")]
                archive.extractall(staging, members=members)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetNotAvailableError(
                f"cannot extract the zip downloaded from {spec.url}: {exc}. Try again, or see "
                + _manual_help(spec)
            ) from exc
        extracted = staging / spec.folder
        if not spec.is_in(extracted):
            raise DatasetNotAvailableError(
                f"the zip from {spec.url} lacks some of {spec.folder}/{{{','.join(spec.required)}}}"
                f"; it is not the expected archive. See {_manual_help(spec)}"
            )
        if target.exists():  # an incomplete folder (complete ones are never re-downloaded)
            shutil.rmtree(target)
        os.rename(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# loading


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
    from collabkit.data.tables import read_ratings

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
        path = _download_into_cache(name, progress)
    sep = {"100k": "\t", "dat": "::", "csv": ","}[spec.layout]
    ratings = read_ratings(path / spec.ratings_file, sep=sep, header=spec.layout == "csv",
                           timestamp_col=3, rating_range=spec.rating_range)  # fmt: skip
    if spec.layout == "100k":
        items, users = _items_100k(path), _users_100k(path)
    elif spec.layout == "dat":
        items = _items_dat(path / "movies.dat")
        users = _users_1m(path / "users.dat") if (path / "users.dat").is_file() else None
    else:
        items, users = _items_csv(path / "movies.csv"), None
    return MovieLens(spec.name, path, ratings, items, users, spec.rating_range)


_download_into_cache = download  # load_movielens' `download` argument shadows the function


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
    from collabkit.data.tables import read_ratings

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


def _finish_items(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    import pandas as pd

    genres = genres.where(~genres.isin(_NO_GENRES), "")
    years = titles.str.extract(_YEAR_RE, expand=False)
    items = pd.DataFrame(
        {
            "title": titles.astype("str").to_numpy(),
            "genres": genres.astype("str").to_numpy(),
            "year": pd.to_numeric(years).astype("Int64").array,
        },
        index=pd.Index(ids.astype("int64").to_numpy(), name="item"),
    )
    return items


def _items_100k(path: Path) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    genre_names = [
        line.split("|")[0]
        for line in (path / "u.genre").read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    raw = pd.read_csv(path / "u.item", sep="|", header=None, encoding="latin-1", dtype="str",
                      keep_default_na=False)  # fmt: skip
    if raw.shape[1] != 5 + len(genre_names):
        raise DataError(
            f"{path / 'u.item'}: expected {5 + len(genre_names)} '|'-separated fields per line "
            f"(5 + one flag per genre in u.genre), found {raw.shape[1]}. Re-extract ml-100k.zip."
        )
    names = np.array(genre_names, dtype=object)
    flags = (raw.iloc[:, 5:].to_numpy() == "1") & ~np.isin(names, list(_NO_GENRES))
    genres = pd.Series(["|".join(names[row]) for row in flags])
    items = _finish_items(raw[0], raw[1], genres)
    released = pd.to_datetime(raw[2], format="%d-%b-%Y", errors="coerce").dt.year
    items["year"] = items["year"].fillna(pd.Series(released.to_numpy(), index=items.index))
    items["year"] = items["year"].astype("Int64")
    return items


def _users_100k(path: Path) -> pd.DataFrame:
    import pandas as pd

    users = pd.read_csv(
        path / "u.user", sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
        dtype={"user": "int64", "age": "int64", "gender": "str", "occupation": "str", "zip": "str"},
        encoding="latin-1", keep_default_na=False,
    )  # fmt: skip
    return users.set_index("user")


def _read_dat_lines(file: Path) -> list[list[str]]:
    """Split a ``::``-separated file (UTF-8, or latin-1 as in ml-1m's movies.dat)."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return [line.split("::") for line in text.splitlines() if line.strip()]


def _items_dat(file: Path) -> pd.DataFrame:
    import pandas as pd

    rows = _read_dat_lines(file)
    bad = next((n for n, row in enumerate(rows, 1) if len(row) < 3), None)
    if bad is not None:
        raise DataError(
            f"{file}, line {bad}: expected 'id::title::genres'. Re-extract the data set's zip."
        )
    ids = pd.Series([row[0] for row in rows])
    titles = pd.Series(["::".join(row[1:-1]) for row in rows])
    genres = pd.Series([row[-1] for row in rows])
    return _finish_items(pd.to_numeric(ids), titles, genres)


def _users_1m(file: Path) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rows = _read_dat_lines(file)
    frame = pd.DataFrame(rows, columns=["user", "gender", "age", "occupation", "zip"])
    codes = frame["occupation"].astype("int64").to_numpy()
    names = np.array(_ML1M_OCCUPATIONS, dtype=object)
    users = pd.DataFrame(
        {
            "age": frame["age"].astype("int64").to_numpy(),
            "gender": frame["gender"].astype("str").to_numpy(),
            "occupation": pd.array(names[np.clip(codes, 0, len(names) - 1)], dtype="str"),
            "zip": frame["zip"].astype("str").to_numpy(),
        },
        index=pd.Index(frame["user"].astype("int64").to_numpy(), name="user"),
    )
    return users


def _items_csv(file: Path) -> pd.DataFrame:
    import pandas as pd

    raw = pd.read_csv(file, dtype={"movieId": "int64", "title": "str", "genres": "str"},
                      keep_default_na=False, encoding="utf-8")  # fmt: skip
    return _finish_items(raw["movieId"], raw["title"], raw["genres"])
