"""issue 13: implicit feedback from the command line: train, evaluate, recommend, similar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabkit.cli.main import main
from collabkit.models.persist import load_model


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _error(code: int, out: str, err: str) -> str:
    assert code != 0 and code != 70, err
    assert out == "" and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Four clusters of 25 items; user u clicks 12 items of cluster u % 4, one per second."""
    rng = np.random.default_rng(0)
    rows = [(u, int(i), 1000 * u + t) for u in range(120)
            for t, i in enumerate(rng.choice(np.arange(25) + 25 * (u % 4), 12, replace=False))]
    folder = tmp_path_factory.mktemp("clicks")
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    df.to_csv(folder / "clicks_ts.csv", index=False)
    df[["user", "item"]].to_csv(folder / "clicks.csv", index=False)
    return {"ts": folder / "clicks_ts.csv", "pairs": folder / "clicks.csv"}


@pytest.fixture(scope="module")
def model_dir(files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("m") / "knn"
    code = main(["train", "--ratings", str(files["ts"]), "--implicit", "--model", "itemknn",
                 "--no-refit", "--out", str(out), "-q"])
    assert code == 0
    return out


def test_train_implicit_leave_last_scores_full_ranking_with_baselines(files, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--ratings", files["ts"], "--implicit", "--model",
                         "itemknn", "--split", "last", "--last", "2", "--out",
                         tmp_path / "m", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["split"] == "last" and res["n_test"] == 240 and res["protocol"] == "full ranking"
    assert res["n_users"] == 120 and set(res["baselines"]) == {"popularity"}  # itemknn is it
    # one cluster of 25 items, 10 seen: the 2 held-out are among 15 candidates of 20 slots
    assert res["recall@20"] == pytest.approx(1.0)
    assert res["baselines"]["popularity"]["recall@20"] < 0.9


def test_default_split_and_kind_for_implicit(files, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--ratings", files["ts"], "--implicit", "--param",
                         "epochs=3", "--out", tmp_path / "m", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["kind"] == "ials" and res["split"] == "last"  # timestamps: each user's latest
    assert set(res["baselines"]) == {"popularity", "itemknn"}


def test_two_column_file_is_read_as_implicit_and_says_so(files, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--ratings", files["pairs"], "--model", "popularity",
                         "--out", tmp_path / "m", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["split"] == "user"  # no timestamps: a share of each user's rows
    assert any("no rating column" in w and "--implicit" in w for w in res["warnings"])
    assert "every training rating is 1" not in err  # weights of implicit data are not stars


def test_rating_model_on_implicit_data_names_the_flag(files, tmp_path, capsys):
    err = _error(*run(capsys, "train", "--ratings", files["ts"], "--implicit", "--model", "dot",
                      "--out", tmp_path / "m"))
    assert "--model dot predicts ratings" in err and "--model bpr | ease" in err
    assert not (tmp_path / "m").exists()


def test_ranker_on_ratings_says_they_are_weights(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 1, 3], "rating": [5, 3, 4, 1]}).to_csv(
        path, index=False)
    code, out, err = run(capsys, "train", "--ratings", path, "--model", "popularity",
                         "--split", "none", "--out", tmp_path / "m")
    assert code == 0, err
    assert "--model popularity ranks implicit feedback" in err and "add --implicit" in err


def test_kfold_on_implicit_is_refused(files, tmp_path, capsys):
    err = _error(*run(capsys, "train", "--ratings", files["ts"], "--implicit", "--split",
                      "kfold", "--model", "popularity", "--out", tmp_path / "m"))
    assert "--split kfold" in err and "--split last" in err


def test_evaluate_saved_ranker(files, model_dir, capsys):
    code, out, err = run(capsys, "evaluate", model_dir, "--ratings", files["ts"], "--split",
                         "user", "--seed", "42", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["kind"] == "itemknn" and "ndcg@20" in res and "popularity" in res["baselines"]
    code, out, err = run(capsys, "evaluate", model_dir, "--ratings", files["ts"], "--split",
                         "user", "--seed", "42")
    assert code == 0 and "NDCG@20" in out and "popularity" in out


def test_evaluate_on_training_rows_warns(files, model_dir, capsys):
    code, out, err = run(capsys, "evaluate", model_dir, "--ratings", files["ts"], "--json")
    assert code == 0
    assert any("among the model's training interactions" in w
               for w in json.loads(out)["warnings"])


def test_recommend_known_user_and_new_user_by_items(model_dir, capsys):
    code, out, err = run(capsys, "recommend", model_dir, "0", "-n", "3", "--json")
    assert code == 0, err
    items = [r["item"] for r in json.loads(out)["recommendations"]]
    assert len(items) == 3 and all(0 <= i < 25 for i in items)  # user 0 is in cluster 0
    code, out, err = run(capsys, "recommend", model_dir, "--item", "30", "--item", "31", "-n",
                         "5", "--json")
    assert code == 0, err
    recs = json.loads(out)["recommendations"]
    assert all(25 <= r["item"] < 50 and r["item"] not in (30, 31) for r in recs)
    assert {r["tier"] for r in recs} == {"personal"}
    m = load_model(model_dir)
    expect = m.recommend_new_user([30, 31], n=5)["item"].tolist()
    assert [r["item"] for r in recs] == expect


def test_recommend_rate_on_a_ranker_points_to_item(model_dir, capsys):
    err = _error(*run(capsys, "recommend", model_dir, "--rate", "5=4"))
    assert "--item ITEM" in err


def test_similar_on_a_ranker(model_dir, capsys):
    code, out, err = run(capsys, "similar", model_dir, "60", "-n", "4", "--json")
    assert code == 0, err
    sim = json.loads(out)["similar"]
    assert len(sim) == 4 and all(50 <= r["item"] < 75 and r["item"] != 60 for r in sim)
    err = _error(*run(capsys, "similar", model_dir, "60", "--min-ratings", "3"))
    assert "--min-ratings applies to factor models" in err


def test_unknown_split_names_gowalla_canonical(files, capsys):
    err = _error(*run(capsys, "train", "--ratings", files["ts"], "--implicit", "--split", "x"))
    assert "unknown --split 'x'" in err and "canonical" in err
    err = _error(*run(capsys, "train", "--ratings", files["ts"], "--implicit", "--split",
                      "canonical"))
    assert "--dataset gowalla" in err


def test_dataset_gowalla_uses_its_canonical_split(tmp_path, capsys, monkeypatch):
    """A stand-in gowalla folder (the adjacency format of LightGCN's train.txt/test.txt)."""
    folder = tmp_path / "gowalla"
    folder.mkdir()
    train = [f"{u} " + " ".join(str(5 * (u // 5) + j) for j in range(5) if j != u % 5)
             for u in range(10)]
    test = [f"{u} {5 * (u // 5) + u % 5}" for u in range(10)]
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path))
    code, out, err = run(capsys, "train", "--dataset", "gowalla", "--model", "itemknn",
                         "--no-refit", "--out", tmp_path / "m", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["kind"] == "itemknn" and res["split"] == "canonical"
    assert res["n_train"] == 40 and res["n_test"] == 10
    assert res["mrr@20"] == pytest.approx(1.0)  # the one unseen item of the user's block first
    code, out, err = run(capsys, "evaluate", tmp_path / "m", "--dataset", "gowalla", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["n_test"] == 10 and res["split"] == "canonical"  # test.txt, not training rows


def test_predict_refuses_a_ranker(model_dir, capsys):
    err = _error(*run(capsys, "predict", model_dir, "0", "3"))
    assert "predicts no ratings" in err and "collabkit recommend" in err
