"""Issue 8: a local copy that lacks files is named as such, never downloaded over."""

from __future__ import annotations

import pytest

from collabkit.data import fetch
from collabkit.data.movielens import cache_path, incomplete_copy, load_movielens
from collabkit.errors import DatasetNotAvailableError


@pytest.fixture
def partial_100k(tmp_path, monkeypatch):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.genre", "u.user"):
        (folder / name).write_text("")
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("an incomplete local copy must not trigger a download")

    monkeypatch.setattr(fetch, "_stream", no_network)
    return folder


def test_incomplete_copy_names_the_missing_files(partial_100k):
    problem = incomplete_copy("ml-100k")
    assert problem is not None and problem.startswith(f"{partial_100k} is an incomplete copy")
    assert "lacks u.item (" in problem and "ml-100k.zip" in problem


@pytest.mark.parametrize("download", [True, False])
def test_loading_an_incomplete_copy_raises_without_downloading(partial_100k, download):
    with pytest.raises(DatasetNotAvailableError, match=r"lacks u\.item"):
        load_movielens("ml-100k", download=download, progress=False)


def test_no_local_copy_is_not_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("COLLABKIT_CACHE", str(tmp_path / "cache"))
    assert incomplete_copy("ml-100k") is None
    (cache_path("ml-100k")).mkdir(parents=True)  # a half cache: download() names it, keeps it
    assert incomplete_copy("ml-100k") is None
