"""The CLI end to end, in process (click's runner) and once as a real subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from collabkit.cli.main import main
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    planted = planted_low_rank(n_users=80, n_items=50, density=0.3, seed=5)
    df = planted.data.to_dataframe()
    df["rating"] = np.clip(np.round(df["rating"]), 1, 5)
    path = tmp_path_factory.mktemp("d") / "ratings.csv"
    df.to_csv(path, index=False)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def trained(ratings_file, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("m") / "model"
    code = main(["train", "--ratings", str(ratings_file), "--epochs", "2", "--out",
                 str(out_dir), "--quiet"])
    assert code == 0
    return out_dir


def test_train_json_has_metrics_and_baselines(ratings_file, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--epochs", "2",
                         "--split", "user", "--out", tmp_path / "m", "--json")
    assert code == 0, err
    res = json.loads(out)  # exactly one JSON object
    assert res["model"] == str(tmp_path / "m") and os.path.isdir(res["model"])
    assert res["epochs"] == 2 and res["fit_seconds"] > 0
    assert 0 < res["rmse"] < 3 and set(res["baselines"]) == {"global mean", "user+item bias"}
    assert res["n_train"] + res["n_test"] == len(pd.read_csv(ratings_file))


def test_evaluate_predict_recommend(trained, ratings_file, capsys):
    code, out, _ = run(capsys, "evaluate", trained, "--ratings", ratings_file, "--json")
    assert code == 0 and json.loads(out)["n"] == len(pd.read_csv(ratings_file))
    code, out, _ = run(capsys, "predict", trained, 0, 1, 12345, 1, "--json")
    preds = json.loads(out)["predictions"]
    assert code == 0 and [p["fallback"] for p in preds] == [False, True]
    code, out, _ = run(capsys, "recommend", trained, 0, 1, "-n", 3, "--json")
    recs = json.loads(out)["recommendations"]
    assert code == 0 and len(recs) == 6 and {r["user"] for r in recs} == {0, 1}
    code, out, _ = run(capsys, "recommend", trained, 3)
    assert code == 0 and "top 10 for user 3" in out


@pytest.mark.parametrize("args, message", [
    (["train"], "exactly one of --dataset NAME or --ratings FILE"),
    (["train", "--ratings", "does-not-exist.csv"], "does-not-exist.csv"),
    (["train", "--dataset", "ml-100k", "--split", "u9"], "u9"),
    (["evaluate", "no-such-model", "--ratings", "x.csv"], "does not exist"),
    (["train", "--ratings", "{ratings}", "--factors", "0"], "--factors"),  # issue 8: CLI words
    (["train", "--ratings", "{ratings}", "--param", "nope"], "NAME=VALUE"),
    (["predict", "{model}", "1"], "USER ITEM pairs"),
])
def test_errors_are_one_line_without_traceback(args, message, ratings_file, trained, capsys):
    args = [a.format(ratings=ratings_file, model=trained) for a in args]
    code, out, err = run(capsys, *args)
    assert code != 0
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


def test_bad_input_file_writes_no_model(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,4\n1,3,abc\n")
    code, _, err = run(capsys, "train", "--ratings", bad, "--out", tmp_path / "m")
    assert code != 0 and "line 3" in err and "bad.csv" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.needs_data("ml-100k")
def test_canonical_split_and_dataset_commands(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--dataset", "ml-100k", "--split", "u1", "--epochs",
                         1, "--batch-size", 2048, "--lr", 0.05, "--out", tmp_path / "u1", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["n_train"] == 80000 and res["n_test"] == 20000
    code, out, _ = run(capsys, "datasets", "list", "--json")
    names = {d["name"] for d in json.loads(out)["datasets"]}
    assert {"ml-100k", "ml-latest-small", "ml-25m"} <= names


def test_console_entry_point_subprocess(trained):
    """The installed way: a real process, exit codes and streams as a user sees them."""
    proc = subprocess.run([sys.executable, "-m", "collabkit", "recommend", str(trained), "0",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["recommendations"]
    proc = subprocess.run([sys.executable, "-m", "collabkit", "recommend", "missing-dir", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_kfold_reports_mean_and_saves_each_fold(ratings_file, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--split", "kfold",
                         "--folds", 3, "--epochs", 1, "--out", tmp_path / "cv", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert [f["fold"] for f in res["folds"]] == [1, 2, 3]
    assert res["rmse"] == pytest.approx(np.mean([f["rmse"] for f in res["folds"]]))
    assert all(os.path.isdir(p) for p in res["models"])


def test_issue12_evaluate_on_training_rows_warns_once_and_flags_json(trained, ratings_file,
                                                                      capsys):
    n = len(pd.read_csv(ratings_file))
    code, out, err = run(capsys, "evaluate", trained, "--ratings", ratings_file, "--json")
    res = json.loads(out)
    # the model trained on 90% of the 80% random split of this very file
    assert code == 0 and 0 < res["overlap_with_training"] < n
    assert len(res["warnings"]) == 1 and f"of {n} test rows" in res["warnings"][0]
    assert [line for line in err.splitlines() if line.startswith("warning: ")] == \
        [f"warning: {res['warnings'][0]}"]
    code, out, err = run(capsys, "evaluate", trained, "--ratings", ratings_file)
    assert code == 0 and err.count("warning: ") == 1 and "not held-out" in err


def test_issue8_predict_and_recommend_match_ids_per_row(trained, capsys):
    code, out, _ = run(capsys, "predict", trained, 1, 5, "alice", 5, 1, 6, "--json")
    preds = json.loads(out)["predictions"]
    assert code == 0 and [p["fallback"] for p in preds] == [False, True, False]
    code, out, _ = run(capsys, "predict", trained, 1, 5, 1, 6, "--json")
    alone = json.loads(out)["predictions"]
    assert [preds[0]["prediction"], preds[2]["prediction"]] == \
        [alone[0]["prediction"], alone[1]["prediction"]]
    code, out, _ = run(capsys, "recommend", trained, 1, "alice", "-n", 3, "--json")
    recs = json.loads(out)["recommendations"]
    mine = [r for r in recs if r["user"] == 1]
    assert code == 0 and len(mine) == 3 and {r["tier"] for r in mine} == {"model"}
    code, out, _ = run(capsys, "recommend", trained, 1, "alice", "-n", 3)
    user1, alice = out.split("top 3 for user alice")
    assert "top 3 for user 1\n" in user1 and "│    3 │" in user1  # not an empty table
    assert "unknown user" in alice


def test_issue8_rate_outside_the_rating_range_is_refused(trained, capsys):
    code, out, err = run(capsys, "recommend", trained, "--rate", "1=100", "--rate", "2=-40")
    assert code != 0 and out == "" and len(err.strip().splitlines()) == 1
    assert "rating 100 for item 1 is outside the model's rating range 1 to 5" in err


def test_issue8_far_rating_warned_in_cli_words(ratings_file, tmp_path, capsys):
    df = pd.read_csv(ratings_file)
    df.loc[4, "rating"] = 1e9
    path = tmp_path / "typo.csv"
    df.to_csv(path, index=False)
    code, out, err = run(capsys, "train", "--ratings", path, "--epochs", 1, "--out",
                         tmp_path / "m", "--json")
    assert code == 0, err
    far = [w for w in json.loads(out)["warnings"] if "far outside" in w]
    assert far and far[0].startswith(f"{path}, line 6: rating 1e+09 is far outside")
    assert "pass --rating-range LOW,HIGH" in far[0] and "rating_range=" not in far[0]
    assert f"warning: {far[0]}" in err.splitlines()


def test_issue8_one_alice_row_does_not_send_the_test_file_to_the_baseline(trained, ratings_file,
                                                                          tmp_path, capsys):
    with_alice = tmp_path / "with_alice.csv"
    with_alice.write_text(ratings_file.read_text() + "alice,1,3\n")  # user ids now read as text
    code, out, _ = run(capsys, "evaluate", trained, "--ratings", ratings_file, "--json")
    plain = json.loads(out)
    code, out, _ = run(capsys, "evaluate", trained, "--ratings", with_alice, "--json")
    res = json.loads(out)
    assert code == 0 and res["n"] == plain["n"] + 1
    assert res["n_fallback"] == plain["n_fallback"] + 1 and res["n_unknown_users"] == 1
    assert res["overlap_with_training"] == plain["overlap_with_training"]


def test_issue11_recommend_policy_explore_is_seeded_and_keeps_known_users(tmp_path):
    """`recommend --policy explore` draws half the list from the user's best 200, seeded."""
    import json

    import collabkit
    from collabkit.cli.main import main
    from collabkit.testing import planted_low_rank

    data = planted_low_rank(n_users=40, n_items=300, k=3, density=0.2, seed=3).data
    model = collabkit.BiasedMF(random_state=0).fit(data)
    model.save(str(tmp_path / "m"))
    user = str(model.user_vocab_.ids([0])[0])

    def run(*args):
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["recommend", str(tmp_path / "m"), user, "-n", "10", "--json", *args]) == 0
        return [r["item"] for r in json.loads(buf.getvalue())["recommendations"]]

    top = run()
    a, b = run("--policy", "explore", "--seed", "1"), run("--policy", "explore", "--seed", "1")
    c = run("--policy", "explore", "--seed", "2")
    assert a == b and len(a) == 10 and len(set(a)) == 10
    assert a != c
    assert len(set(a) & set(top)) >= 5  # the other half stays the user's best items
    seen = set(model.seen_indices_[model.seen_indptr_[0]:model.seen_indptr_[1]])
    assert not set(model.item_vocab_.index(a)) & seen
