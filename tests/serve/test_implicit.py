"""issue 13: the service serves an implicit-feedback model; answers equal the library's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import collabkit

from .conftest import APP_KEY

H = {"Authorization": f"Bearer {APP_KEY}"}


@pytest.fixture(scope="module")
def implicit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iALS on users 1-60 of the bundled ml-latest-small, every rated pair an interaction."""
    data = collabkit.load_dataset("ml-latest-small", download=False, progress=False)
    users = data.user_vocab.ids(data.users)
    train = collabkit.to_implicit(data.take(np.flatnonzero(users <= 60)))
    model = collabkit.fit(train, "ials", n_factors=8, epochs=3, random_state=0)
    return Path(model.save(str(tmp_path_factory.mktemp("serve-implicit") / "model")))


@pytest.fixture(scope="module")
def model(implicit_dir: Path) -> Any:
    return collabkit.load_model(implicit_dir)


@pytest.fixture()
def client(implicit_dir: Path, tmp_path: Path) -> Any:
    from fastapi.testclient import TestClient

    from collabkit.serve import ServeConfig, create_app

    app = create_app(ServeConfig(model=implicit_dir, db=tmp_path / "fb.sqlite3",
                                 app_key=APP_KEY, access_log=False))
    with TestClient(app) as c:
        yield c


def _items(body: dict[str, Any]) -> tuple[list[Any], np.ndarray]:
    return [it["item_id"] for it in body["items"]], np.array([it["score"] for it in body["items"]])


def _feedback(client: Any, user: str, items: list[int], rid: str, **extra: Any) -> Any:
    return client.post("/v1/feedback", headers=H, json={
        "request_id": rid, "user_id": user,
        "ratings": [{"item_id": i, **extra} for i in items]})


def test_known_user_gets_the_models_list(client, model):
    for user in (1, 7, 42):
        body = client.get(f"/v1/users/{user}/recommendations", params={"k": 10},
                          headers=H).json()
        lib = model.recommend(user, n=10)
        got, scores = _items(body)
        assert body["tier"] == "model" and got == lib["item"].tolist()
        np.testing.assert_allclose(scores, lib["score"].to_numpy(), atol=1e-6)


def test_unknown_user_gets_popularity(client, model):
    body = client.get("/v1/users/nobody/recommendations", params={"k": 5}, headers=H).json()
    lib = model.recommend_new_user(None, n=5)
    assert body["tier"] == "popularity" and _items(body)[0] == lib["item"].tolist()


def test_visitor_feedback_is_an_interaction_and_folds_in(client, model):
    """Feedback needs no rating; a given one is ignored (stored as 1)."""
    new = [1, 260, 2571]
    assert _feedback(client, "v1", new, "r-1").status_code == 201
    assert _feedback(client, "v1", [1196], "r-2", rating=5.0).status_code == 201
    stored = client.get("/v1/users/v1/ratings", headers=H).json()["ratings"]
    assert sorted(r["item_id"] for r in stored) == sorted(["1", "1196", "260", "2571"])
    assert {r["rating"] for r in stored} == {1.0}
    body = client.get("/v1/users/v1/recommendations", params={"k": 10}, headers=H).json()
    lib = model.recommend_new_user([*new, 1196], n=10)
    got, scores = _items(body)
    assert body["tier"] == "personal" and got == lib["item"].tolist()
    np.testing.assert_allclose(scores, lib["score"].to_numpy(), atol=1e-6)
    assert not set(got) & {*new, 1196}


def test_known_user_feedback_folds_in_training_and_new_interactions(client, model):
    m = model
    u = int(m.user_vocab_.index([3])[0])
    seen = m.item_vocab_.ids(m.seen_indices_[m.seen_indptr_[u]:m.seen_indptr_[u + 1]]).tolist()
    new = next(i for i in m.item_vocab_.ids(np.arange(len(m.item_vocab_))).tolist()
               if i not in seen)
    assert _feedback(client, "3", [new], "r-3").status_code == 201
    body = client.get("/v1/users/3/recommendations", params={"k": 8, "exclude": ["1200"]},
                      headers=H).json()
    lib = m.recommend_new_user([*seen, new], n=9)
    want = [i for i in lib["item"].tolist() if i != 1200][:8]
    assert body["tier"] == "personal" and _items(body)[0] == want


def test_similar_items_equal_library(client, model):
    body = client.get("/v1/items/260/similar", params={"k": 5}, headers=H).json()
    lib = model.similar_items(260, n=5)
    assert [it["item_id"] for it in body["items"]] == lib["item"].tolist()
    np.testing.assert_allclose([it["similarity"] for it in body["items"]],
                               lib["similarity"].to_numpy(), atol=1e-6)


def test_answers_in_ratings_are_refused(client):
    r = client.post("/v1/predictions", headers=H,
                    json={"pairs": [{"user_id": "1", "item_id": 1}]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported"
    assert "predicts no ratings" in r.json()["error"]["message"]
    r = client.get("/v1/users/1/explain", params={"item_id": "1"}, headers=H)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported"


def test_rating_model_still_requires_a_rating(tmp_path, small_model_dir):
    """issue 13: rating became optional in the schema; a rating model still needs one."""
    from fastapi.testclient import TestClient

    from collabkit.serve import ServeConfig, create_app

    app = create_app(ServeConfig(model=small_model_dir, db=tmp_path / "fb.sqlite3",
                                 app_key=APP_KEY, access_log=False))
    with TestClient(app) as c:
        r = _feedback(c, "v9", [1], "r-9")
    assert r.status_code == 422 and r.json()["error"]["code"] == "rating_required"
    assert "ratings[0].rating is required" in r.json()["error"]["message"]


def test_fuzz_no_server_error_on_an_implicit_model(implicit_dir, tmp_path):
    """The schema-driven fuzz of test_fuzz.py, against the implicit model (issue 13)."""
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
    from hypothesis import HealthCheck, given, settings

    from collabkit.serve import ServeConfig, create_app
    from tests.serve.test_fuzz import CHECKS

    app = create_app(ServeConfig(model=implicit_dir, db=tmp_path / "fb.sqlite3",
                                 app_key=APP_KEY, access_log=False))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 13
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(headers=H, checks=CHECKS)

        run()
