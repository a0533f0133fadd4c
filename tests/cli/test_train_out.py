"""``collabkit train --out``: refused before training when a save must not go there (issue 8)."""

import os

import numpy as np
import pytest

from collabkit.cli.main import main
from collabkit.models.persist import load_model
from collabkit.testing import planted_low_rank


@pytest.fixture
def project(tmp_path):
    """The issue's reproduction: ~/p/data/ratings.csv, ~/p/notes.tex, ~/p/runs/<a model>."""
    p = tmp_path / "p"
    (p / "data").mkdir(parents=True)
    df = planted_low_rank(n_users=40, n_items=30, density=0.3, seed=5).data.to_dataframe()
    df["rating"] = np.clip(np.round(df["rating"]), 1, 5)
    df.to_csv(p / "data" / "ratings.csv", index=False)
    (p / "notes.tex").write_text("x\n")
    return p


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if training starts: the --out check must come first."""
    def fit(*a, **k):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr("collabkit.api.fit", fit)


def _snapshot(root):
    return sorted((d, tuple(sorted(f))) for d, _, f in os.walk(root))


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_out_project_folder_is_refused_before_training(project, capsys, no_training):  # issue 8
    before = _snapshot(project)
    code, out, err = run(capsys, "train", "--ratings", project / "data" / "ratings.csv",
                         "--split", "none", "--out", project, "--quiet")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: --out '{project}' is a folder that "
                                                   "is not empty and is not a collabkit model")
    assert "give --out a new or empty folder" in err and "Traceback" not in err
    assert _snapshot(project) == before and (project / "notes.tex").read_text() == "x\n"


def test_out_dot_is_refused(project, capsys, monkeypatch, no_training):  # issue 8: --out .
    monkeypatch.chdir(project)
    code, _, err = run(capsys, "train", "--ratings", "data/ratings.csv", "--out", ".", "--quiet")
    assert code == 2 and "error: --out '.' is the working directory" in err
    assert sorted(os.listdir(project)) == ["data", "notes.tex"]


def test_out_existing_file_is_refused(project, capsys, no_training):  # issue 8: .NAME.old
    code, _, err = run(capsys, "train", "--ratings", project / "data" / "ratings.csv",
                       "--out", project / "notes.tex", "--quiet")
    assert code == 2 and "notes.tex' is an existing file" in err
    assert sorted(os.listdir(project)) == ["data", "notes.tex"]
    code, _, err = run(capsys, "train", "--ratings", project / "data" / "ratings.csv",
                       "--split", "kfold", "--folds", "2", "--out", project / "notes.tex")
    assert code == 2 and "notes.tex' is a file" in err


def test_out_unwritable_is_refused_before_training(project, capsys, monkeypatch,
                                                   no_training):  # issue 8: read-only --out
    real_access = os.access  # what a read-only mount or folder reports for writes
    monkeypatch.setattr(os, "access", lambda p, mode: not mode & os.W_OK and real_access(p, mode))
    code, _, err = run(capsys, "train", "--ratings", project / "data" / "ratings.csv",
                       "--out", project / "model", "--quiet")
    assert code == 6, err
    assert "error: --out" in err and "this user cannot write to" in err
    assert "internal error" not in err


def test_retraining_into_the_same_model_folder_works(project, capsys):
    args = ["train", "--ratings", project / "data" / "ratings.csv", "--epochs", "1",
            "--split", "none", "--out", project / "runs" / "m", "--quiet"]
    assert run(capsys, *args)[0] == 0
    (project / "runs" / "m" / "notes.md").write_text("first run")
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert (project / "runs" / "m" / "notes.md").read_text() == "first run"
    load_model(project / "runs" / "m")
    assert sorted(os.listdir(project)) == ["data", "notes.tex", "runs"]
