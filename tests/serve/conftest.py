"""A small model for the service tests: BiasedMF on 60 users of the bundled ml-latest-small.

The bundled data ships inside the package, so these tests need no ``COLLABKIT_DATA``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="collabkit[serve] is not installed")

APP_KEY = "test-app-key-0123456789abcdef"


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved BiasedMF trained on users 1-60 of ml-latest-small (titles and genres kept)."""
    import collabkit

    data = collabkit.load_dataset("ml-latest-small", download=False, progress=False)
    users = data.user_vocab.ids(data.users)
    train = data.take(np.flatnonzero(users <= 60))
    model = collabkit.BiasedMF(n_factors=8, epochs=3, random_state=0).fit(train)
    return Path(model.save(str(tmp_path_factory.mktemp("serve") / "model")))


@pytest.fixture(scope="session")
def small_model(small_model_dir: Path) -> Any:
    import collabkit

    return collabkit.load_model(small_model_dir)


@pytest.fixture()
def app(small_model_dir: Path, tmp_path: Path) -> Any:
    from collabkit.serve import ServeConfig, create_app

    return create_app(ServeConfig(model=small_model_dir, db=tmp_path / "fb.sqlite3",
                                  app_key=APP_KEY, access_log=False))


@pytest.fixture()
def client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture()
def app_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {APP_KEY}"}
