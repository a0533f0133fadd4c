"""Re-ranking policies in the service (issue 11): ``policy=`` on recommendations gives the
library's own re-ranked lists (collabkit.recommend.rerank), is logged, and never shows a
rated item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabkit.recommend.onboarding import item_factor_table
from collabkit.recommend.rerank import recommend_reranked, rerank
from collabkit.serve.servedlog import read_served

RATINGS = {1: 5.0, 260: 4.5, 2571: 5.0, 1196: 4.0, 1210: 1.0, 296: 2.0}


def _visitor_with(client: Any, ratings: dict[int, float]) -> tuple[str, dict[str, str]]:
    v = client.post("/v1/visitors").json()
    user, h = v["user_id"], {"Authorization": f"Bearer {v['token']}"}
    r = client.post("/v1/feedback", headers=h, json={
        "request_id": "r-" + user, "user_id": user,
        "ratings": [{"item_id": i, "rating": x} for i, x in ratings.items()]})
    assert r.status_code == 201
    return user, h


def _ids(body: dict[str, Any]) -> list[Any]:
    return [it["item_id"] for it in body["items"]]


@pytest.mark.parametrize("policy", ["mmr", "debias"])
def test_known_user_policy_equals_library(client: Any, app_headers: dict[str, str],
                                          small_model: Any, policy: str) -> None:
    body = client.get("/v1/users/7/recommendations", params={"k": 10, "policy": policy},
                      headers=app_headers).json()
    assert body["tier"] == "model" and body["policy"] == policy
    lib = recommend_reranked(small_model, [7], n=10, policy=policy)  # type: ignore[arg-type]
    assert _ids(body) == lib["item"].tolist()
    plain = client.get("/v1/users/7/recommendations", params={"k": 10},
                       headers=app_headers).json()
    assert plain["policy"] == "top"
    if policy == "debias":  # (this small model's factors are near collinear: mmr ~ top)
        assert _ids(plain) != _ids(body)


@pytest.mark.parametrize("policy", ["mmr", "debias"])
def test_visitor_policy_equals_rerank_of_the_fold_in(client: Any, small_model: Any,
                                                     policy: str) -> None:
    m = small_model
    user, h = _visitor_with(client, RATINGS)
    body = client.get(f"/v1/users/{user}/recommendations", params={"k": 10, "policy": policy},
                      headers=h).json()
    assert body["tier"] == "personal" and body["policy"] == policy
    scores = m.fold_in(RATINGS).scores().copy()
    scores[m.item_vocab_.index(list(RATINGS))] = -np.inf
    counts = np.bincount(m.seen_indices_, minlength=len(m.item_vocab_))
    want = rerank(scores[None], 10, policy, factors=item_factor_table(m),  # type: ignore[arg-type]
                  popularity=counts)[0]
    assert _ids(body) == m.item_vocab_.ids(want).tolist()
    assert not set(_ids(body)) & set(RATINGS)
    client.app.state.ctx.served.flush()
    log = read_served(client.app.state.ctx.db_path)
    assert set(log[log["user"] == user]["policy"]) == {policy}


def test_explore_keeps_the_best_half_and_is_stable_until_the_user_rates(
        small_model_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from collabkit.serve import ServeConfig, create_app

    app = create_app(ServeConfig(model=small_model_dir, db=tmp_path / "fb.db", cache_size=0,
                                 access_log=False))
    with TestClient(app) as c:
        user, h = _visitor_with(c, RATINGS)
        url = f"/v1/users/{user}/recommendations"
        top = _ids(c.get(url, params={"k": 10}, headers=h).json())
        one = c.get(url, params={"k": 10, "policy": "explore"}, headers=h).json()
        two = c.get(url, params={"k": 10, "policy": "explore"}, headers=h).json()
        assert one["policy"] == "explore" and _ids(one) == _ids(two)  # no cache: same seed
        assert _ids(one)[:5] == top[:5] and set(_ids(one)[5:]) != set(top[5:])
        assert not set(_ids(one)) & set(RATINGS) and len(set(_ids(one))) == 10


def test_fallback_tiers_stay_plain_and_unknown_policy_is_422(client: Any) -> None:
    user, h = _visitor_with(client, {1: 5.0, 260: 4.0})
    body = client.get(f"/v1/users/{user}/recommendations", params={"policy": "mmr"},
                      headers=h).json()
    assert body["tier"] == "bias" and body["policy"] == "top"
    bad = client.get(f"/v1/users/{user}/recommendations", params={"policy": "random"},
                     headers=h)
    assert bad.status_code == 422 and "policy" in bad.json()["error"]["message"]


def test_server_default_policy(small_model_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from collabkit.errors import ConfigError
    from collabkit.serve import ServeConfig, create_app

    app = create_app(ServeConfig(model=small_model_dir, db=tmp_path / "fb.db", policy="mmr",
                                 access_log=False))
    with TestClient(app) as c:
        user, h = _visitor_with(c, RATINGS)
        assert c.get(f"/v1/users/{user}/recommendations", headers=h).json()["policy"] == "mmr"
    with pytest.raises(ConfigError, match="--policy must be one of top, mmr, debias, explore"):
        create_app(ServeConfig(model=small_model_dir, db=tmp_path / "x.db", policy="nope"))
