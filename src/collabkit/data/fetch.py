"""Checked, atomic download and extraction of a zipped data set, for any data set.

:func:`fetch_archive` streams a zip from a URL into a temporary file beside the target folder,
checks its SHA-256, extracts the zip's top folder into a temporary folder beside the target, and
only then renames it into place. It knows nothing of MovieLens: a catalogue (such as
:mod:`collabkit.data.movielens`) describes each archive with an :class:`Archive`.

It never deletes what it did not make: an existing target folder is replaced only when it holds
the marker file (:data:`MARKER`) that this module writes into every folder it extracts. Any other
existing folder (a manual install, half done or not) stays as it is, and the download stops with
an error that names it.
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
from pathlib import Path
from typing import BinaryIO

from collabkit._version import __version__
from collabkit.errors import DatasetNotAvailableError

__all__ = ["Archive", "MARKER", "fetch_archive"]

MARKER = ".collabkit-extracted"  # written into every folder this module extracts


@dataclass(frozen=True)
class Archive:
    """One downloadable zip and what a good extraction of it holds."""

    name: str  # shown in messages and the progress bar
    url: str
    sha256: str
    folder: str  # the top folder inside the zip
    required: tuple[str, ...]  # files the extracted folder must hold
    manual_help: str  # how to install it by hand, ending a sentence ("to install it by hand, …")


def fetch_archive(archive: Archive, target: Path, progress: bool = True) -> Path:
    """Download ``archive``, check its SHA-256 and extract its top folder as ``target``.

    Raises
    ------
    DatasetNotAvailableError
        The download failed, the zip's SHA-256 is not the expected one (it is deleted), the zip
        lacks the required files, or ``target`` exists and was not extracted by collabkit.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(archive, target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".zip")
    zip_path = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(archive, out, progress)
        if digest != archive.sha256:
            raise DatasetNotAvailableError(
                f"the file downloaded from {archive.url} has SHA-256 {digest}, not the expected "
                f"{archive.sha256}; it was deleted. The download may have been corrupted or the "
                "server sent something else: try again later, or see " + archive.manual_help
            )
        _extract(archive, zip_path, target)
    finally:
        zip_path.unlink(missing_ok=True)
    return target


def _check_replaceable(archive: Archive, target: Path) -> None:
    """Refuse a ``target`` that exists and is not collabkit's own extraction (issue 9)."""
    if not target.exists() or (target / MARKER).is_file():
        return
    missing = [n for n in archive.required if not (target / n).is_file()]
    lacks = f"it lacks {', '.join(missing)}" if target.is_dir() else "it is a file, not a folder"
    raise DatasetNotAvailableError(
        f"{target} exists but is not a complete copy of {archive.name} ({lacks}), and collabkit "
        f"did not make it, so it leaves it alone. Finish the install there (extract the whole "
        f"{archive.url.rsplit('/', 1)[-1]} so that it holds {', '.join(archive.required)}), "
        "or move that folder away to have collabkit download the data set."
    )


def _stream(archive: Archive, out: BinaryIO, progress: bool) -> str:
    """Stream the zip into ``out`` and return its SHA-256."""
    headers = {"User-Agent": f"collabkit/{__version__}"}
    request = urllib.request.Request(archive.url, headers=headers)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(progress, total, archive.name) as advance:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetNotAvailableError(
            f"could not download {archive.name} from {archive.url}: {reason}. If this machine "
            f"is offline, {archive.manual_help}"
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


def _extract(archive: Archive, zip_path: Path, target: Path) -> None:
    """Extract the zip's top folder into a temporary folder, then rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-extract-"))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zipped:
                prefix = f"{archive.folder}/"
                members = [m for m in zipped.namelist() if m.startswith(prefix)]
                zipped.extractall(staging, members=members)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetNotAvailableError(
                f"cannot extract the zip downloaded from {archive.url}: {exc}. Try again, or "
                "see " + archive.manual_help
            ) from exc
        extracted = staging / archive.folder
        if not all((extracted / n).is_file() for n in archive.required):
            raise DatasetNotAvailableError(
                f"the zip from {archive.url} lacks some of "
                f"{archive.folder}/{{{','.join(archive.required)}}}; it is not the expected "
                f"archive. See {archive.manual_help}"
            )
        (extracted / MARKER).write_text(f"extracted by collabkit {__version__} from "
                                        f"{archive.url} (SHA-256 {archive.sha256})\n")
        _move_into_place(archive, extracted, target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(archive: Archive, extracted: Path, target: Path, staging: Path) -> None:
    """Rename ``extracted`` to ``target``; an old extraction of ours is renamed aside first."""
    _check_replaceable(archive, target)  # again: someone may have made it while we downloaded
    previous = staging / "previous"
    if target.exists():  # our own earlier extraction: swap, then delete the old one
        os.rename(target, previous)
    try:
        os.rename(extracted, target)
    except OSError as exc:  # a folder appeared at target in between: leave it alone
        if previous.exists() and not target.exists():
            os.rename(previous, target)
        raise DatasetNotAvailableError(
            f"cannot move the extracted {archive.name} to {target}: {exc}. Check that folder, "
            "then try again."
        ) from exc
