"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real data sets (ml-100k, ml-latest-small) live beside the repository, never inside it.
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point collabkit's download cache at a temporary folder and its data at ../shared.

    Tests never write to the real user cache, and ``load_movielens("ml-100k")`` finds the data
    without each test passing ``data_dir``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLLABKIT_CACHE", str(tmp_path_factory.mktemp("collabkit-cache")))
        patch.setenv("COLLABKIT_DATA", os.environ.get("COLLABKIT_DATA", str(DEFAULT_DATA_DIR)))
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the real data sets: ``$COLLABKIT_DATA`` or ``../shared/datasets``."""
    return Path(os.environ.get("COLLABKIT_DATA", DEFAULT_DATA_DIR)).resolve()


# ---------------------------------------------------------------------------- shared data
# Files a shared data set must hold for the tests that read it (issue 8: without
# ../shared/datasets, `make test` had 4 failures and 11 errors; now those tests skip).
_SHARED_FILES = {
    "ml-100k": ("u.data", "u.item", "u.genre", "u.user", "u1.base", "u1.test", "ub.base",
                "ub.test"),
    "ml-latest-small": ("ratings.csv", "movies.csv"),
}


def shared_data_root() -> Path:
    """``$COLLABKIT_DATA``, else ``../shared/datasets`` beside the repository."""
    return Path(os.environ.get("COLLABKIT_DATA") or DEFAULT_DATA_DIR)


def missing_shared_data(name: str) -> str | None:
    """The skip reason when the shared data set ``name`` is not complete, else None."""
    folder = shared_data_root() / name
    if all((folder / f).is_file() for f in _SHARED_FILES[name]):
        return None
    return (f"needs the shared {name} data set, not found at {folder} "
            "(set COLLABKIT_DATA to the folder holding it)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_data(name): skip unless $COLLABKIT_DATA/<name> holds that data set")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a ``needs_data`` test before its fixtures run (they would try to download)."""
    for mark in item.iter_markers("needs_data"):
        for name in mark.args:
            reason = missing_shared_data(name)
            if reason is not None:
                pytest.skip(reason)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The shared ml-100k folder; the test skips (one reason, above) when it is absent."""
    reason = missing_shared_data("ml-100k")
    if reason is not None:
        pytest.skip(reason)
    return shared_data_root() / "ml-100k"
