"""collabkit.data.fetch: checked, atomic download + extract that deletes only its own folders.

Issue 9: `_extract` used to `shutil.rmtree` any incomplete target folder, including a half-done
manual install in the very folder the manual-install help points users at.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from collabkit.data import fetch
from collabkit.data.fetch import MARKER, Archive, fetch_archive
from collabkit.data.movielens import download
from collabkit.errors import DatasetNotAvailableError

REQUIRED = ("ratings.csv", "movies.csv")


def make_zip(tmp_path: Path, top: str = "toy") -> Archive:
    """A zip holding `toy/ratings.csv` and `toy/movies.csv`, served from a file:// URL."""
    zip_path = tmp_path / "server" / "toy.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(f"{top}/ratings.csv", "userId,movieId,rating\n1,1,5\n")
        archive.writestr(f"{top}/movies.csv", "movieId,title,genres\n1,A (1999),Drama\n")
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return Archive("toy", zip_path.as_uri(), digest, "toy", REQUIRED, "to install it by hand, …")


def test_extracts_atomically_and_marks_its_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path)
    target = tmp_path / "cache" / "toy"
    assert fetch_archive(archive, target, progress=False) == target
    assert (target / "ratings.csv").read_text() == "userId,movieId,rating\n1,1,5\n"
    assert (target / MARKER).is_file() and archive.sha256 in (target / MARKER).read_text()
    assert sorted(p.name for p in target.parent.iterdir()) == ["toy"]  # no temporary leftovers


def test_issue9_half_manual_install_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_zip(tmp_path)
    target = tmp_path / "cache" / "toy"
    target.mkdir(parents=True)
    (target / "ratings.csv").write_text("the user's own file\n")

    def no_network(*args: object, **kwargs: object) -> str:
        raise AssertionError("a folder collabkit cannot replace must not trigger a download")

    monkeypatch.setattr(fetch, "_stream", no_network)
    with pytest.raises(DatasetNotAvailableError) as info:
        fetch_archive(archive, target, progress=False)
    message = str(info.value)
    assert str(target) in message and "lacks movies.csv" in message
    assert "move that folder away" in message
    assert sorted(p.name for p in target.iterdir()) == ["ratings.csv"]
    assert (target / "ratings.csv").read_text() == "the user's own file\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["toy"]


def test_issue9_own_incomplete_extraction_is_replaced(tmp_path: Path) -> None:
    archive = make_zip(tmp_path)
    target = tmp_path / "cache" / "toy"
    target.mkdir(parents=True)
    (target / MARKER).write_text("extracted by collabkit\n")
    (target / "ratings.csv").write_text("truncated")
    fetch_archive(archive, target, progress=False)
    assert (target / "ratings.csv").read_text() == "userId,movieId,rating\n1,1,5\n"
    assert (target / "movies.csv").is_file() and (target / MARKER).is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["toy"]


def test_issue9_movielens_download_keeps_half_manual_install_in_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manual-install help names `<cache>/movielens/ml-100k/u.data`: a user following it
    halfway must not have the folder deleted by the next download."""
    monkeypatch.setenv("COLLABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COLLABKIT_DATA", raising=False)
    folder = tmp_path / "cache" / "movielens" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n")
    monkeypatch.setattr(fetch, "_stream", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(DatasetNotAvailableError, match=r"lacks u\.item, u\.genre, u\.user"):
        download("ml-100k", progress=False)
    assert (folder / "u.data").read_text() == "1\t1\t5\t881250949\n"


def test_issue9_a_file_in_the_way_is_kept(tmp_path: Path) -> None:
    archive = make_zip(tmp_path)
    target = tmp_path / "cache" / "toy"
    target.parent.mkdir(parents=True)
    target.write_text("not a folder")
    with pytest.raises(DatasetNotAvailableError, match="it is a file, not a folder"):
        fetch_archive(archive, target, progress=False)
    assert target.read_text() == "not a folder"
