"""The page's API (issue 11): year and genres on questions, titles on stored ratings, one-line
reasons, ``--min-personal``, the genre start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _visitor(client: Any) -> tuple[str, dict[str, str]]:
    v = client.post("/v1/visitors").json()
    return v["user_id"], {"Authorization": f"Bearer {v['token']}"}


def _rate(client: Any, user: str, headers: dict[str, str], ratings: dict[int, float],
          rid: str) -> None:
    r = client.post("/v1/feedback", headers=headers, json={
        "request_id": rid, "user_id": user,
        "ratings": [{"item_id": i, "rating": v} for i, v in ratings.items()]})
    assert r.status_code == 201, r.text


def test_year_of() -> None:
    from collabkit.serve.engine import year_of

    assert year_of("Alien (1979)") == 1979
    assert year_of("Babylon 5 (1993) ") == 1993
    assert year_of("Alien") is None and year_of(None) is None and year_of("(1979) x") is None


def test_onboarding_items_and_stored_ratings_carry_year_and_genres(client: Any) -> None:
    user, h = _visitor(client)
    items = client.post("/v1/onboarding/items", headers=h, json={"n": 12}).json()["items"]
    assert len(items) == 12
    assert all(it["year"] and it["title"].endswith(f"({it['year']})") for it in items)
    assert all(it["genres"] for it in items)
    _rate(client, user, h, {260: 5.0}, "r1")
    got = client.get(f"/v1/users/{user}/ratings", headers=h).json()["ratings"]
    assert got[0]["title"] == "Star Wars: Episode IV - A New Hope (1977)"
    assert got[0]["year"] == 1977 and "Sci-Fi" in got[0]["genres"]


def test_reasons_name_the_strongest_supporting_rating(client: Any, small_model: Any) -> None:
    """The reason is the rated item with the largest positive weight in the library's own
    explanation (collabkit.interpret.explain) of the same fold-in."""
    from collabkit.interpret import explain

    ratings = {1: 5.0, 260: 4.5, 2571: 5.0, 1196: 4.0, 1210: 1.0, 296: 2.0}
    user, h = _visitor(client)
    _rate(client, user, h, ratings, "r1")
    body = client.get(f"/v1/users/{user}/recommendations", params={"k": 10, "reasons": "true"},
                      headers=h).json()
    assert body["tier"] == "personal"
    folded = small_model.fold_in(ratings)
    titles = dict(zip(small_model.item_vocab_.all_ids.tolist(),
                      small_model.item_meta_["title"].tolist(), strict=True))
    n_named = 0
    for it in body["items"]:
        top = explain(small_model, folded, it["item_id"]).contributions.iloc[0]
        if top["weight"] > 0:
            n_named += 1
            assert it["reason"] == (f"because you rated {titles[top['item']]} "
                                    f"{top['rating']:g} stars")
        else:
            assert not it["reason"].startswith("because you rated")
    assert n_named >= 5
    plain = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=h).json()
    assert [it["item_id"] for it in plain["items"]] == [it["item_id"] for it in body["items"]]
    assert all(it["reason"] is None for it in plain["items"])


def test_min_personal_sets_when_the_tier_turns_personal(small_model_dir: Path,
                                                        tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from collabkit.errors import ConfigError
    from collabkit.serve import ServeConfig, create_app

    three = {1: 5.0, 260: 4.5, 2571: 5.0}
    for min_personal, tier in ((3, "personal"), (5, "bias")):
        app = create_app(ServeConfig(model=small_model_dir, db=tmp_path / f"{min_personal}.db",
                                     access_log=False, min_personal=min_personal))
        with TestClient(app) as c:
            user, h = _visitor(c)
            _rate(c, user, h, three, "r1")
            body = c.get(f"/v1/users/{user}/recommendations", headers=h).json()
            assert body["tier"] == tier and len(body["items"]) == 10
            assert not {it["item_id"] for it in body["items"]} & set(three)
    with pytest.raises(ConfigError, match="--min-personal must be at least 1"):
        create_app(ServeConfig(model=small_model_dir, db=tmp_path / "x.db", min_personal=0))


def test_genre_start(client: Any, small_model: Any) -> None:
    import numpy as np

    from collabkit.recommend.onboarding import genre_start, known_genres

    user, h = _visitor(client)
    assert client.get("/v1/genres", headers=h).json()["genres"] == known_genres(small_model)
    r = client.get(f"/v1/users/{user}/genre-start",
                   params=[("genre", "sci-fi"), ("genre", "Comedy"), ("k", "10"),
                           ("exclude", "260")], headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "genre" and len(body["items"]) == 10
    ids = [it["item_id"] for it in body["items"]]
    assert 260 not in ids
    # the library's genre start, ranked over items with enough ratings, is the same list
    counts = np.bincount(small_model.seen_indices_, minlength=len(small_model.item_vocab_))
    least = 20 if (counts >= 20).sum() >= 50 else 1  # the service's rule for small models
    scores = genre_start(small_model, ["Sci-Fi", "Comedy"], min_ratings=least).scores()
    scores[counts < least] = -np.inf
    scores[small_model.item_vocab_.index([260])[0]] = -np.inf
    want = small_model.item_vocab_.ids(np.argsort(-scores, kind="stable")[:10]).tolist()
    assert ids == want
    for it in body["items"]:
        assert it["reason"].startswith("because you like ")
    bad = client.get(f"/v1/users/{user}/genre-start", params={"genre": "Polka"}, headers=h)
    assert bad.status_code == 422
    assert "genre='Polka' is not a genre" in bad.json()["error"]["message"]
    assert client.get(f"/v1/users/{user}/genre-start", headers=h).status_code == 422
    other, _ = _visitor(client)
    assert client.get(f"/v1/users/{other}/genre-start", params={"genre": "Comedy"},
                      headers=h).status_code == 403
