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
