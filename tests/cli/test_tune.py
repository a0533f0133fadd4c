"""issue 13: `collabkit tune` for explicit and implicit kinds; errors name the flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabkit.cli.main import main
from collabkit.models.persist import load_model
from collabkit.testing import planted_low_rank


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    rows = [(u, int(i)) for u in range(80)
            for i in rng.choice(np.arange(20) + 20 * (u % 4), 10, replace=False)]
    path = tmp_path_factory.mktemp("c") / "clicks.csv"
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    df = planted_low_rank(n_users=50, n_items=40, density=0.4, seed=3).data.to_dataframe()
    path = tmp_path_factory.mktemp("r") / "ratings.csv"
    df.to_csv(path, index=False)
    return path


def test_tune_implicit_saves_the_refit_model(clicks, tmp_path, capsys):
    out_dir = tmp_path / "tuned"
    code, out, err = run(capsys, "tune", "--model", "itemknn", "--ratings", clicks,
                         "--implicit", "--trials", "3", "--seed", "1", "--out", out_dir,
                         "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["metric"] == "ndcg@20" and len(res["trials"]) == 3
    assert set(res["best_params"]) == {"n_neighbors", "shrink"}
    assert res["n_fit"] + res["n_valid"] == res["n_train"]
    assert set(res["test"]) >= {"ndcg@20", "recall@20", "map@20", "mrr@20", "hit_rate@20"}
    m = load_model(out_dir)
    assert m.kind == "itemknn" and m.n_neighbors == res["best_params"]["n_neighbors"]


def test_tune_explicit_table_and_test_score_once(ratings, capsys):
    code, out, err = run(capsys, "tune", "--model", "als", "--ratings", ratings, "--trials",
                         "2", "--param", "epochs=2")
    assert code == 0, err
    assert "2 trials of als: validation rmse" in out
    assert out.count("scored once") == 1 and "rmse" in out and "not saved" in out


def test_same_seed_same_trials(clicks, capsys):
    args = ["tune", "--model", "itemknn", "--ratings", clicks, "--implicit", "--trials", "3",
            "--json"]
    a = json.loads(run(capsys, *args)[1])["trials"]
    b = json.loads(run(capsys, *args)[1])["trials"]
    assert [(t["n_neighbors"], t["score"]) for t in a] == \
        [(t["n_neighbors"], t["score"]) for t in b]


@pytest.mark.parametrize("args, words", [
    (["--trials", "0"], "--trials must be at least 1"),
    (["--metric", "rmse"], "--metric 'rmse' does not score a ranker"),
    (["--timeout", "-1"], "--timeout must be"),
    (["--valid-frac", "1.5"], "--valid-frac must be between 0 and 1"),
    (["--param", "factors=3"], "does not take --param factors"),
    (["--split", "u1"], "use it with --dataset ml-100k"),
])
def test_errors_name_flags(clicks, capsys, args, words):
    code, out, err = run(capsys, "tune", "--model", "itemknn", "--ratings", clicks,
                         "--implicit", *args)
    assert code not in (0, 70) and out == ""
    assert err.startswith("error: ") and words in err and "Traceback" not in err


def test_kind_errors(clicks, capsys):
    for kind, words in (("module", "declares no search space"), ("zzz", "unknown model kind"),
                        ("dot", "--model dot predicts ratings")):
        code, out, err = run(capsys, "tune", "--model", kind, "--ratings", clicks)
        assert code not in (0, 70) and words in err, err
