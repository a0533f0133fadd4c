"""Every endpoint through FastAPI's TestClient: happy paths, error cases, and answers equal to
the library's own ``predict`` / ``recommend`` / fold-in for the same model (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

import collabkit
from collabkit.interpret import explain as lib_explain

NEW_RATINGS = {1: 5.0, 260: 4.5, 2571: 5.0, 1196: 4.0, 1210: 3.5}


def post_feedback(client, headers, user, ratings, rid):
    return client.post("/v1/feedback", headers=headers, json={
        "request_id": rid, "user_id": user,
        "ratings": [{"item_id": i, "rating": r} for i, r in ratings.items()]})


def test_health_needs_no_credentials(client, small_model):
    r = client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["store"] == "sqlite" and body["schema_version"] == 3
    assert body["n_users"] == len(small_model.user_vocab_) == 60
    assert body["n_items"] == len(small_model.item_vocab_)


def test_model_card(client, app_headers, small_model):
    r = client.get("/v1/model", headers=app_headers)
    assert r.status_code == 200
    card = r.json()
    assert card["kind"] == "dot" and card["params"]["n_factors"] == 8
    assert card["data_fingerprint"] == small_model.data_fingerprint_
    assert card["n_train"] == small_model.n_train_
    assert card["metrics"]["valid_rmse"] == pytest.approx(small_model.valid_rmse_)
    assert card["rating_range"] == list(small_model.rating_range_)
    assert card["trained_at"].endswith("+00:00")


def test_item_search_by_title_and_genre(client, app_headers):
    r = client.get("/v1/items", params={"q": "star wars", "limit": 5}, headers=app_headers)
    assert r.status_code == 200
    items = r.json()["items"]
    assert items and all("star wars" in it["title"].lower() for it in items)
    assert 260 in {it["item_id"] for it in items}
    counts = [it["n_ratings"] for it in items]
    assert counts == sorted(counts, reverse=True)
    r = client.get("/v1/items", params={"genre": "film-noir", "limit": 50}, headers=app_headers)
    assert r.json()["items"] and all("Film-Noir" in it["genres"] for it in r.json()["items"])
    assert client.get("/v1/items", params={"q": "zzzz-no-such"},
                      headers=app_headers).json() == {"items": []}
    assert client.get("/v1/items", params={"limit": 51}, headers=app_headers).status_code == 422


def test_known_user_recommendations_equal_library(client, app_headers, small_model):
    for user in (1, 7, 42):
        r = client.get(f"/v1/users/{user}/recommendations", params={"k": 10},
                       headers=app_headers)
        assert r.status_code == 200
        body = r.json()
        lib = small_model.recommend(user, n=10)
        assert body["tier"] == "model"
        assert [it["item_id"] for it in body["items"]] == lib["item"].tolist()
        np.testing.assert_allclose([it["score"] for it in body["items"]], lib["score"],
                                   atol=1e-6)
        assert [it["title"] for it in body["items"]] == lib["title"].tolist()


def test_no_rated_item_is_recommended(client, app_headers, small_model):
    m = small_model
    for user in m.user_vocab_.all_ids[:50]:
        u = int(m.user_vocab_.index([user])[0])
        rated = set(m.item_vocab_.ids(m.seen_indices_[m.seen_indptr_[u]:m.seen_indptr_[u + 1]]))
        got = client.get(f"/v1/users/{user}/recommendations", params={"k": 20},
                         headers=app_headers).json()["items"]
        assert len(got) == 20 and not rated & {it["item_id"] for it in got}


def test_unknown_user_gets_popularity_tier(client, app_headers, small_model):
    body = client.get("/v1/users/nobody/recommendations", params={"k": 5},
                      headers=app_headers).json()
    lib = small_model.recommend_new_user(None, n=5)
    assert body["tier"] == "popularity"
    assert [it["item_id"] for it in body["items"]] == lib["item"].tolist()


def test_feedback_user_is_folded_in_immediately(client, app_headers, small_model):
    r = post_feedback(client, app_headers, "alice", NEW_RATINGS, "req-alice-1")
    assert r.status_code == 201
    assert r.json() == {"request_id": "req-alice-1", "user_id": "alice", "n_rows": 5,
                        "duplicate": False}
    body = client.get("/v1/users/alice/recommendations", params={"k": 10},
                      headers=app_headers).json()
    lib = small_model.recommend_new_user(NEW_RATINGS, n=10)
    assert body["tier"] == "personal" == lib["tier"].iloc[0]
    assert [it["item_id"] for it in body["items"]] == lib["item"].tolist()
    np.testing.assert_allclose([it["score"] for it in body["items"]], lib["score"], atol=1e-6)
    assert not set(NEW_RATINGS) & {it["item_id"] for it in body["items"]}
    # predictions of a feedback user are the library's fold-in
    pairs = [{"user_id": "alice", "item_id": i} for i in (318, 356, 593)]
    got = client.post("/v1/predictions", json={"pairs": pairs}, headers=app_headers).json()
    lib_pred = small_model.fold_in(NEW_RATINGS).predict([318, 356, 593])
    np.testing.assert_allclose([p["rating"] for p in got["predictions"]],
                               lib_pred["prediction"], atol=1e-6)
    # a stored rating shows up in the user's ratings, the latest rating of an item winning
    assert post_feedback(client, app_headers, "alice", {1: 2.0}, "req-alice-2").status_code \
        == 201
    stored = client.get("/v1/users/alice/ratings", headers=app_headers).json()["ratings"]
    assert {(s["item_id"], s["rating"]) for s in stored} == {
        ("1", 2.0), ("260", 4.5), ("2571", 5.0), ("1196", 4.0), ("1210", 3.5)}


def test_few_ratings_get_bias_tier(client, app_headers, small_model):
    post_feedback(client, app_headers, "bob", {1: 5.0, 260: 4.0}, "req-bob")
    body = client.get("/v1/users/bob/recommendations", headers=app_headers).json()
    lib = small_model.recommend_new_user({1: 5.0, 260: 4.0}, n=10)
    assert body["tier"] == "bias"
    assert [it["item_id"] for it in body["items"]] == lib["item"].tolist()


def test_known_user_with_feedback_folds_training_and_feedback(client, app_headers,
                                                              small_model):
    m = small_model
    u = int(m.user_vocab_.index([3])[0])
    lo, hi = m.seen_indptr_[u], m.seen_indptr_[u + 1]
    train = dict(zip(m.item_vocab_.ids(m.seen_indices_[lo:hi]).tolist(),
                     m.seen_ratings_[lo:hi].astype(float).tolist(), strict=True))
    post_feedback(client, app_headers, "3", {318: 1.0}, "req-3")
    body = client.get("/v1/users/3/recommendations", headers=app_headers).json()
    lib = m.recommend_new_user({**train, 318: 1.0}, n=10)
    assert body["tier"] == "personal"
    np.testing.assert_allclose([it["score"] for it in body["items"]], lib["score"], atol=1e-6)
    assert not ({*train, 318} & {it["item_id"] for it in body["items"]})


def test_predictions_equal_library(client, app_headers, small_model):
    pairs = [(1, 260), (7, 1), (42, 318), ("stranger", 260)]
    r = client.post("/v1/predictions", headers=app_headers, json={
        "pairs": [{"user_id": str(u), "item_id": i} for u, i in pairs]})
    assert r.status_code == 200
    got = r.json()["predictions"]
    # one pair per call: mixing int and str user ids in one library call is issue 8's
    # per-row id matching, fixed elsewhere
    lib = [small_model.predict([u], [i]).iloc[0] for u, i in pairs]
    np.testing.assert_allclose([p["rating"] for p in got], [x["prediction"] for x in lib],
                               atol=1e-6)
    assert [p["fallback"] for p in got] == [False, False, False, True]
    r = client.post("/v1/predictions", headers=app_headers,
                    json={"pairs": [{"user_id": "1", "item_id": 99999999}]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_item"


def test_similar_items(client, app_headers, small_model):
    r = client.get("/v1/items/260/similar", params={"k": 5}, headers=app_headers)
    assert r.status_code == 200
    got = r.json()["items"]
    lib = small_model.similar_items(260, n=5)
    assert [g["item_id"] for g in got] == lib["item"].tolist() and 260 not in lib["item"].values
    np.testing.assert_allclose([g["similarity"] for g in got], lib["similarity"], atol=1e-6)
    r = client.get("/v1/items/99999999/similar", headers=app_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_item"


def test_explain_known_and_folded_user(client, app_headers, small_model):
    r = client.get("/v1/users/1/explain", params={"item_id": "260"}, headers=app_headers)
    assert r.status_code == 200
    e = lib_explain(small_model, 1, 260)
    body = r.json()
    assert body["prediction"] == pytest.approx(e.prediction, abs=1e-6)
    assert body["source"] == "learned" and body["dot"] == pytest.approx(e.dot, abs=1e-6)
    post_feedback(client, app_headers, "carol", NEW_RATINGS, "req-carol")
    body = client.get("/v1/users/carol/explain", params={"item_id": "318"},
                      headers=app_headers).json()
    folded = small_model.fold_in(NEW_RATINGS)
    assert body["prediction"] == pytest.approx(float(folded.scores()[
        small_model.item_vocab_.index([318])[0]]), abs=1e-6)
    assert {c["item_id"] for c in body["contributions"]} <= set(NEW_RATINGS)
    r = client.get("/v1/users/nobody/explain", params={"item_id": "260"}, headers=app_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_user"


def test_onboarding_items(client, app_headers, small_model):
    r = client.post("/v1/onboarding/items", json={"n": 6}, headers=app_headers)
    assert r.status_code == 200
    first = [it["item_id"] for it in r.json()["items"]]
    assert len(first) == len(set(first)) == 6
    again = client.post("/v1/onboarding/items", json={"n": 6, "exclude": first[:3]},
                        headers=app_headers).json()["items"]
    assert len(again) == 6 and not set(first[:3]) & {it["item_id"] for it in again}
    assert client.post("/v1/onboarding/items", json={"n": 25},
                       headers=app_headers).status_code == 422


def test_feedback_retry_is_idempotent(client, app_headers, app):
    assert post_feedback(client, app_headers, "dave", {1: 4.0}, "same-id").status_code == 201
    r = post_feedback(client, app_headers, "dave", {1: 4.0}, "same-id")
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert app.state.ctx.store.count_rows() == 1
    r = post_feedback(client, app_headers, "erin", {1: 4.0}, "same-id")
    assert r.status_code == 409 and r.json()["error"]["code"] == "request_id_reused"
    r = post_feedback(client, app_headers, "dave", {1: 2.0}, "same-id")  # other ratings
    assert r.status_code == 409 and r.json()["error"]["code"] == "request_id_reused"
    stored = client.get("/v1/users/dave/ratings", headers=app_headers).json()["ratings"]
    assert [(x["item_id"], x["rating"]) for x in stored] == [("1", 4.0)]


@pytest.mark.parametrize("rating", [0.0, 6, float("nan"), "x", True, None])
def test_bad_ratings_are_422(client, app_headers, rating, app):
    body = {"request_id": "bad", "user_id": "u", "ratings": [{"item_id": 1, "rating": rating}]}
    r = client.post("/v1/feedback", headers=app_headers, json=body) if rating == rating else \
        client.post("/v1/feedback", headers={**app_headers, "content-type": "application/json"},
                    content=b'{"request_id": "bad", "user_id": "u", '
                            b'"ratings": [{"item_id": 1, "rating": NaN}]}')
    assert r.status_code == 422
    assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message"}
    assert app.state.ctx.store.count_rows() == 0


@pytest.mark.parametrize("body", [
    {"request_id": "x", "user_id": "u", "ratings": [{"item_id": 1, "rating": 4}], "extra": 1},
    {"request_id": "x", "user_id": "u", "ratings": []},
    {"request_id": "x", "user_id": "u", "ratings": [{"item_id": 1, "rating": 4}] * 101},
    {"request_id": "", "user_id": "u", "ratings": [{"item_id": 1, "rating": 4}]},
    {"request_id": "x", "user_id": "u" * 65, "ratings": [{"item_id": 1, "rating": 4}]},
    {"request_id": "x", "user_id": "u", "ratings": [{"item_id": 1.5, "rating": 4}]},
])
def test_malformed_feedback_is_422(client, app_headers, body):
    r = client.post("/v1/feedback", headers=app_headers, json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"


def test_unknown_item_feedback_is_404(client, app_headers):
    r = post_feedback(client, app_headers, "u", {99999999: 4.0}, "r-unknown")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_item"


def test_body_over_64k_is_413(client, app_headers):
    r = client.post("/v1/feedback", content=b"{" + b" " * (1 << 20) + b"}",
                    headers={**app_headers, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_k_bounds_and_unknown_routes(client, app_headers):
    for k in (0, 101, 10000):
        r = client.get("/v1/users/1/recommendations", params={"k": k}, headers=app_headers)
        assert r.status_code == 422
    r = client.get("/v1/nope", headers=app_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_delete_user(client, app_headers):
    post_feedback(client, app_headers, "frank", NEW_RATINGS, "req-frank")
    r = client.delete("/v1/users/frank", headers=app_headers)
    assert r.status_code == 200 and r.json() == {"user_id": "frank", "deleted_rows": 5}
    r = client.get("/v1/users/frank/ratings", headers=app_headers)
    assert r.status_code == 404
    assert client.get("/v1/users/frank/recommendations",
                      headers=app_headers).json()["tier"] == "popularity"


def test_metrics_count_requests_feedback_and_tiers(client, app_headers):
    post_feedback(client, app_headers, "gina", NEW_RATINGS, "req-gina")
    client.get("/v1/users/gina/recommendations", headers=app_headers)
    client.get("/v1/users/1/recommendations", headers=app_headers)
    text = client.get("/metrics").text
    assert "collabkit_feedback_rows_written_total 5.0" in text
    assert 'collabkit_recommendations_served_total{tier="personal"} 1.0' in text
    assert 'collabkit_recommendations_served_total{tier="model"} 1.0' in text
    assert ('collabkit_http_requests_total{endpoint="/v1/users/{user_id}/recommendations",'
            'method="GET",status="200"} 2.0') in text
    assert "gina" not in text


def test_reload_swaps_model_and_feedback_still_applies(client, app_headers, small_model_dir,
                                                       tmp_path, app):
    post_feedback(client, app_headers, "hank", NEW_RATINGS, "req-hank")
    before = client.get("/v1/health").json()["model_fingerprint"]
    data = collabkit.load_dataset("ml-latest-small", download=False, progress=False)
    users = data.user_vocab.ids(data.users)
    other = collabkit.BiasedMF(n_factors=8, epochs=2, random_state=1).fit(
        data.take(np.flatnonzero(users <= 40)))
    app.state.ctx.holder.path = tmp_path / "model2"
    other.save(str(tmp_path / "model2"))
    r = client.post("/v1/admin/reload", headers=app_headers)
    assert r.status_code == 200 and r.json()["previous_fingerprint"] == before
    assert client.get("/v1/health").json()["model_fingerprint"] != before
    body = client.get("/v1/users/hank/recommendations", headers=app_headers).json()
    lib = other.recommend_new_user(NEW_RATINGS, n=10)
    assert body["tier"] == "personal"
    np.testing.assert_allclose([it["score"] for it in body["items"]], lib["score"], atol=1e-6)
    # a broken folder: 409, and the model that was serving keeps serving
    (tmp_path / "model2" / "model.json").write_text("{not json")
    r = client.post("/v1/admin/reload", headers=app_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "reload_failed"
    assert client.get("/v1/users/hank/recommendations", headers=app_headers).status_code == 200


def test_reload_under_concurrent_requests_fails_none(client, app_headers, app):
    import threading

    statuses: list[int] = []
    stop = threading.Event()

    def reader(w: int) -> None:
        n = 0
        while not stop.is_set():
            r = client.get(f"/v1/users/{1 + (w + n) % 60}/recommendations",
                           headers=app_headers)
            statuses.append(r.status_code)
            n += 1

    threads = [threading.Thread(target=reader, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            app.state.ctx.reload()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert client.get("/v1/health").json()["reloads"] == 3


def test_cached_lists_are_never_stale(client, app_headers, small_model):
    def recs() -> dict:
        return client.get("/v1/users/ivan/recommendations", headers=app_headers).json()

    assert recs()["tier"] == "popularity"
    post_feedback(client, app_headers, "ivan", NEW_RATINGS, "req-ivan")
    first, again = recs(), recs()
    assert first == again and first["tier"] == "personal"
    post_feedback(client, app_headers, "ivan", {318: 1.0}, "req-ivan-2")  # new feedback
    third = recs()
    lib = small_model.recommend_new_user({**NEW_RATINGS, 318: 1.0}, n=10)
    np.testing.assert_allclose([it["score"] for it in third["items"]], lib["score"], atol=1e-6)
    assert 318 not in {it["item_id"] for it in third["items"]}
    client.delete("/v1/users/ivan", headers=app_headers)
    assert recs()["tier"] == "popularity"
    text = client.get("/metrics").text
    assert 'collabkit_recommendation_cache_total{result="hit"} 2.0' in text  # again + last
    assert 'collabkit_recommendation_cache_total{result="miss"} 3.0' in text
