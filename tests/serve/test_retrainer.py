"""Retraining from stored feedback (issue 11): `serve --retrain-every N` retrains in a separate
process and swaps the promoted model in while requests keep being answered;
`collabkit retrain MODEL --db PATH`."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import collabkit
from collabkit.cli.main import main
from collabkit.serve.retrainer import feedback_frame
from collabkit.testing.page import serve_in_thread
from tests.serve.conftest import APP_KEY

USERS = list(range(1, 21))


def _new_ratings(model: Any) -> list[list[tuple[int, int, float]]]:
    """Ten rounds of 20 ratings: in round r each of users 1-20 rates the r-th most rated item
    they had not rated, 0.5 stars (the model expects far more), so the newest (held-out)
    feedback comes from users whose earlier feedback the new model trained on."""
    counts = np.bincount(model.seen_indices_, minlength=len(model.item_vocab_))
    by_count = model.item_vocab_.ids(np.argsort(-counts, kind="stable")).tolist()
    picks = {}
    for u in USERS:
        j = int(model.user_vocab_.index([u])[0])
        seen = set(model.item_vocab_.ids(
            model.seen_indices_[model.seen_indptr_[j]:model.seen_indptr_[j + 1]]).tolist())
        picks[u] = [i for i in by_count if i not in seen][:10]
    return [[(u, picks[u][r], 0.5) for u in USERS] for r in range(10)]


def _rmse(model: Any, rows: list[tuple[int, int, float]], users_as_text: bool) -> float:
    users = [str(u) if users_as_text else u for u, _, _ in rows]
    pred = model.predict(users, [i for _, i, _ in rows])["prediction"].to_numpy()
    return float(np.sqrt(np.mean((pred - np.array([r for _, _, r in rows])) ** 2)))


def test_retrain_every_swaps_in_the_promoted_model_without_a_failed_request(
        small_model_dir: Path, tmp_path: Path) -> None:
    from collabkit.serve import ServeConfig, create_app

    folder = tmp_path / "model"
    shutil.copytree(small_model_dir, folder)
    old = collabkit.load_model(folder)
    rounds = _new_ratings(old)
    app = create_app(ServeConfig(model=folder, db=tmp_path / "fb.sqlite3", app_key=APP_KEY,
                                 access_log=False, retrain_every=200))
    ctx = app.state.ctx
    auth = {"Authorization": f"Bearer {APP_KEY}"}
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()
    with serve_in_thread(app) as url:
        def hammer() -> None:  # requests all through the retrain and the swap
            with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
                while not stop.is_set():
                    for path in ("/v1/users/7/recommendations", "/v1/health",
                                 "/v1/users/3/ratings"):
                        try:
                            r = c.get(path)
                            if r.status_code != 200:
                                failures.append(f"{path}: {r.status_code}")
                            answered[0] += 1
                        except httpx.HTTPError as e:
                            failures.append(f"{path}: {type(e).__name__}")

        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        first = httpx.get(url + "/v1/health").json()["model_fingerprint"]
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            for r, batch in enumerate(rounds):
                for u in USERS:
                    rows = [(i, x) for uu, i, x in batch if uu == u]
                    res = c.post("/v1/feedback", json={
                        "request_id": f"r{r}-u{u}", "user_id": str(u),
                        "ratings": [{"item_id": i, "rating": x} for i, x in rows]})
                    assert res.status_code == 201, res.text
        assert ctx.retrainer.wait(1, timeout=300), "the retrain did not finish"
        stop.set()
        thread.join(timeout=60)
        now = httpx.get(url + "/v1/health").json()["model_fingerprint"]
    run = ctx.retrainer.runs[0]
    assert run["error"] is None, run["error"]
    assert run["model"] == str(folder.resolve())  # always from the model serve was given
    report = run["report"]
    assert report["n_feedback"] == 200 and report["n_holdout"] == 40
    assert report["new_rmse"] < report["old_rmse"] and report["promote"] and run["promoted"]
    assert now != first and Path(ctx.snapshot.path) == Path(run["out"])
    assert failures == [] and answered[0] > 0
    assert (folder / "model.json").exists() and Path(run["out"]).parent == folder.parent
    new = collabkit.load_model(run["out"])
    flat = [row for batch in rounds for row in batch]
    text_users = new.user_vocab_.all_ids.dtype.kind not in "iu"
    assert _rmse(new, flat, text_users) < _rmse(old, flat, False)


def test_feedback_frame_keeps_the_model_id_types(client: Any, app_headers: dict[str, str],
                                                 small_model: Any) -> None:
    v = client.post("/v1/visitors").json()
    client.post("/v1/feedback", headers=app_headers, json={
        "request_id": "a", "user_id": "7", "ratings": [{"item_id": 260, "rating": 4.0}]})
    client.post("/v1/feedback", headers={"Authorization": f"Bearer {v['token']}"}, json={
        "request_id": "b", "user_id": v["user_id"],
        "ratings": [{"item_id": 1, "rating": 5.0}, {"item_id": "2571", "rating": 3.5}]})
    got = feedback_frame(client.app.state.ctx.db_path, small_model)
    assert got["user"].tolist() == [7, v["user_id"], v["user_id"]]
    assert got["item"].tolist() == [260, 1, 2571] and got["item"].dtype == np.int64
    assert got["rating"].tolist() == [4.0, 5.0, 3.5]
    assert got["time"].is_monotonic_increasing


def test_cli_retrain_from_db(client: Any, app_headers: dict[str, str], small_model_dir: Path,
                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for j in range(10):
        client.post("/v1/feedback", headers=app_headers, json={
            "request_id": f"r{j}", "user_id": str(j + 1),
            "ratings": [{"item_id": 260, "rating": 0.5}, {"item_id": 1, "rating": 0.5}]})
    db = client.app.state.ctx.db_path
    code = main(["retrain", str(small_model_dir), "--db", str(db), "--out",
                 str(tmp_path / "new"), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["n_feedback"] == 20 and rep["n_holdout"] == 4
    assert collabkit.load_model(tmp_path / "new").kind == "dot"
    assert main(["retrain", str(small_model_dir), "--out", str(tmp_path / "n2")]) == 2
    assert "--feedback FILE or --db PATH" in capsys.readouterr().err
    assert main(["retrain", str(small_model_dir), "--db", str(tmp_path / "no.db"), "--out",
                 str(tmp_path / "n3")]) == 2
    assert "--db" in capsys.readouterr().err and not (tmp_path / "n3").exists()


def test_retrain_every_flag_errors(small_model_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite3")
    assert main(["serve", str(small_model_dir), "--db", db, "--retrain-every", "-1"]) == 2
    assert "--retrain-every must be 0 (never) or more" in capsys.readouterr().err
    assert main(["serve", str(small_model_dir), "--db", db, "--retrain-every", "5",
                 "--workers", "2"]) == 2
    assert "--retrain-every needs --workers 1" in capsys.readouterr().err
