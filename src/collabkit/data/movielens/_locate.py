"""Where MovieLens data sets are found (data_dir, $COLLABKIT_DATA, the bundled copy, the
cache), and downloading one into the cache through :mod:`collabkit.data.fetch`."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

from collabkit.data.fetch import Archive, fetch_archive
from collabkit.data.movielens._catalog import _Spec, _spec


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
    (:func:`download` replaces an incomplete copy it extracted itself, and names any other).
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
        by hand), the zip does not have the expected SHA-256 (it is deleted), or the cache
        folder exists, is incomplete and was not extracted by collabkit (it is left alone).
    ConfigError
        The name is not a known data set.
    """
    spec = _spec(name)
    target = _cache_root() / spec.name
    if spec.is_in(target):
        return target
    archive = Archive(spec.name, spec.url, spec.sha256, spec.folder, spec.required,
                      _manual_help(spec))
    return fetch_archive(archive, target, progress)


def _manual_help(spec: _Spec) -> str:
    return (
        f"to install it by hand, download {spec.url} (SHA-256 {spec.sha256}) and extract it so "
        f"that {_cache_root() / spec.name / spec.ratings_file} exists; or extract it as "
        f"<folder>/{spec.name}/ and set the environment variable COLLABKIT_DATA=<folder> "
        "(or pass data_dir=<folder>)."
    )

