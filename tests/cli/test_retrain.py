"""``collabkit retrain MODEL --feedback FILE --out NEW`` (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabkit.cli.main import main
from collabkit.models.persist import load_model
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Ratings 1-5 of 80 users; users 70-79 appear only in the feedback file."""
    df = planted_low_rank(n_users=80, n_items=50, density=0.3, seed=5).data.to_dataframe()
    df["rating"] = np.clip(np.round(df["rating"]), 1, 5)
    folder = tmp_path_factory.mktemp("d")
    df[df["user"] < 70].to_csv(folder / "ratings.csv", index=False)
    fb = df[df["user"] >= 70].assign(timestamp=lambda d: np.arange(len(d)) * 10)
    fb.to_csv(folder / "feedback.csv", index=False)
    model = folder / "model"
    assert main(["train", "--ratings", str(folder / "ratings.csv"), "--epochs", "3",
                 "--rating-range", "1,5", "--out", str(model), "--quiet"]) == 0
    return model, folder / "feedback.csv"


def test_retrain_json_report(files: tuple[Path, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    model, feedback = files
    code = main(["retrain", str(model), "--feedback", str(feedback), "--out",
                 str(tmp_path / "new"), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0
    n_fb = len(pd.read_csv(feedback))
    assert res["n_feedback"] == n_fb and res["n_holdout"] == int(np.ceil(0.2 * n_fb))
    assert res["old_model"] == str(model) and res["new_model"] == str(tmp_path / "new")
    assert isinstance(res["promote"], bool) and res["old_rmse"] > 0 and res["new_rmse"] > 0
    assert load_model(tmp_path / "new").n_train_ == res["n_base"] + res["n_feedback_train"]


def test_retrain_errors_name_the_flag_or_line(files: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model, feedback = files
    code = main(["retrain", str(model), "--feedback", str(feedback), "--out", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "already exists" in err
    bad = tmp_path / "bad.csv"
    rows = pd.read_csv(feedback)
    rows.loc[2, "rating"] = 9
    rows.to_csv(bad, index=False)
    code = main(["retrain", str(model), "--feedback", str(bad), "--out", str(tmp_path / "n")])
    err = capsys.readouterr().err
    assert code == 3 and "bad.csv" in err and "line 4" in err and "Traceback" not in err
    assert not (tmp_path / "n").exists()
