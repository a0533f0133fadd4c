"""Who may do what (issue 10): visitors only reach their own data, keys are checked, ids are
stored literally, no CORS for foreign origins, write limits, no pickle."""

from __future__ import annotations

import pytest

from tests.serve.conftest import APP_KEY


def visitor(client) -> tuple[str, dict[str, str]]:
    r = client.post("/v1/visitors")
    assert r.status_code == 201
    body = r.json()
    assert body["user_id"].startswith("v-") and len(body["token"]) >= 32
    return body["user_id"], {"Authorization": f"Bearer {body['token']}"}


def feedback(user: str, rid: str, item: int = 1) -> dict[str, object]:
    return {"request_id": rid, "user_id": user, "ratings": [{"item_id": item, "rating": 4.0}]}


def test_visitor_reads_and_writes_only_their_own_data(client):
    alice, ha = visitor(client)
    bob, hb = visitor(client)
    assert client.post("/v1/feedback", json=feedback(alice, "a1"), headers=ha).status_code == 201
    assert client.get(f"/v1/users/{alice}/ratings", headers=ha).status_code == 200
    for method, path, body in [
        ("get", f"/v1/users/{alice}/ratings", None),
        ("get", f"/v1/users/{alice}/recommendations", None),
        ("get", f"/v1/users/{alice}/explain?item_id=1", None),
        ("delete", f"/v1/users/{alice}", None),
        ("post", "/v1/feedback", feedback(alice, "b-as-a")),
        ("post", "/v1/predictions", {"pairs": [{"user_id": alice, "item_id": 1}]}),
        ("get", "/v1/users/1/recommendations", None),  # a user of the model
        ("post", "/v1/admin/reload", None),
    ]:
        r = client.request(method, path, json=body, headers=hb)
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "forbidden"
    # alice's data is untouched
    rows = client.get(f"/v1/users/{alice}/ratings", headers=ha).json()["ratings"]
    assert [(x["item_id"], x["rating"]) for x in rows] == [("1", 4.0)]


@pytest.mark.parametrize("header", [None, "Bearer wrong-key-0123456789abcdef", "Basic abc",
                                    "Bearer ", f"bearer {APP_KEY}x", "Bearer " + "é" * 20])
def test_missing_or_wrong_key_is_401(client, header):
    headers = {} if header is None else {"Authorization": header.encode("utf-8")}
    r = client.get("/v1/users/1/recommendations", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthorized"
    assert APP_KEY not in r.text


def test_app_key_reaches_every_user(client, app_headers):
    alice, ha = visitor(client)
    client.post("/v1/feedback", json=feedback(alice, "a-own"), headers=ha)
    r = client.get(f"/v1/users/{alice}/ratings", headers=app_headers)
    assert r.status_code == 200 and len(r.json()["ratings"]) == 1


def test_deleted_visitor_token_stops_working(client):
    alice, ha = visitor(client)
    client.post("/v1/feedback", json=feedback(alice, "a-del"), headers=ha)
    r = client.delete(f"/v1/users/{alice}", headers=ha)
    assert r.status_code == 200 and r.json()["deleted_rows"] == 1
    assert client.get(f"/v1/users/{alice}/ratings", headers=ha).status_code == 401


@pytest.mark.parametrize("evil", ["1'; DROP TABLE feedback; --", "x\" OR 1=1 --",
                                  "<img src=x onerror=alert(1)>",
                                  "Robert'); DELETE FROM requests;"])
def test_sql_injection_ids_are_stored_literally(client, app_headers, evil, app):
    r = client.post("/v1/feedback", json=feedback(evil, evil), headers=app_headers)
    assert r.status_code == 201 and r.json()["user_id"] == evil
    r = client.get(f"/v1/users/{evil}/ratings", headers=app_headers)
    assert r.status_code == 200 and r.json()["user_id"] == evil
    assert app.state.ctx.store.count_rows() == 1 and app.state.ctx.store.integrity_ok()
    r = client.get("/v1/users/x/explain", params={"item_id": evil}, headers=app_headers)
    assert r.status_code == 404 and "<img" not in r.text  # not echoed


def test_user_ids_that_cannot_be_addressed_are_refused(client, app_headers):
    for bad in ["a/b", "tab\there", "nul\x00"]:
        r = client.post("/v1/feedback", json=feedback(bad, "r-" + bad), headers=app_headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"


def test_request_text_is_not_echoed_in_errors(client, app_headers) -> None:
    body = {"request_id": "e", "user_id": "u", "<script>alert(1)</script>": 1,
            "ratings": [{"item_id": "<img src=x onerror=alert(1)>", "rating": 4}]}
    r = client.post("/v1/feedback", json=body, headers=app_headers)
    assert r.status_code == 422  # field names are named, reduced to [A-Za-z0-9_.-]
    assert "<" not in r.text and ">" not in r.text and "Extra inputs" in r.text
    r = client.get("/v1/<script>alert(1)</script>", headers=app_headers)
    assert r.status_code == 404 and "<" not in r.text and "alert" not in r.text


def test_no_cors_header_for_a_foreign_origin(client, app_headers):
    h = {**app_headers, "Origin": "https://evil.example"}
    r = client.get("/v1/users/1/recommendations", headers=h)
    assert r.status_code == 200
    assert not any(k.lower().startswith("access-control-") for k in r.headers)
    pre = client.options("/v1/feedback", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


def test_too_many_writes_get_429_with_retry_after(client):
    user, h = visitor(client)
    codes = [client.post("/v1/feedback", json=feedback(user, f"burst-{n}"), headers=h)
             for n in range(100)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and all(r.status_code in (201, 429) for r in codes)
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"
    stored = client.get(f"/v1/users/{user}/ratings", headers=h)
    assert stored.status_code in (200, 429)


def test_tokens_never_reach_logs_or_database(small_model_dir, tmp_path, caplog) -> None:
    from fastapi.testclient import TestClient

    from collabkit.serve import ServeConfig, create_app

    app = create_app(ServeConfig(model=small_model_dir, db=tmp_path / "t.sqlite3",
                                 app_key=APP_KEY, access_log=True))
    with TestClient(app) as client, caplog.at_level("INFO", logger="collabkit.serve.access"):
        r = client.post("/v1/visitors")
        token = r.json()["token"]
        client.get("/v1/users/1/recommendations", headers={"Authorization": f"Bearer {token}"})
        client.get("/v1/users/1/recommendations", headers={"Authorization": f"Bearer {APP_KEY}"})
    assert caplog.text.count('"route": "/v1/users/{user_id}/recommendations"') == 2
    assert '"role": "visitor"' in caplog.text and '"role": "app"' in caplog.text
    assert token not in caplog.text and APP_KEY not in caplog.text
    from collabkit.serve.store import hash_token

    files = b"".join(p.read_bytes() for p in tmp_path.glob("t.sqlite3*"))  # with the WAL
    assert hash_token(token).encode() in files and token.encode() not in files


def test_loading_and_serving_never_unpickle(small_model_dir, tmp_path, monkeypatch,
                                            app_headers):
    import pickle

    import torch
    from fastapi.testclient import TestClient

    from collabkit.serve import ServeConfig, create_app

    calls: list[str] = []

    def refuse(name: str):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} called")
        return f

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse(f"pickle.{name}"))
    monkeypatch.setattr(torch, "load", refuse("torch.load"))
    app = create_app(ServeConfig(model=small_model_dir, db=tmp_path / "p.sqlite3",
                                 app_key=APP_KEY, access_log=False))
    with TestClient(app) as c:
        assert c.get("/v1/users/1/recommendations", headers=app_headers).status_code == 200
        assert c.post("/v1/admin/reload", headers=app_headers).status_code == 200
    assert calls == []


def test_default_bind_is_loopback() -> None:
    import inspect

    from collabkit.cli.main import serve
    from collabkit.serve.server import run

    assert inspect.signature(run).parameters["host"].default == "127.0.0.1"
    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"
