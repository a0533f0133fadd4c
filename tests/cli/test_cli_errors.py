"""Issue 8: ordinary conditions give one actionable line in CLI words, never exit 70."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collabkit.cli.main import main
from collabkit.testing import planted_low_rank


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory) -> Path:
    df = planted_low_rank(n_users=40, n_items=30, density=0.4, seed=3).data.to_dataframe()
    df["rating"] = np.clip(np.round(df["rating"]), 1, 5)
    path = tmp_path_factory.mktemp("d") / "ratings.csv"
    df.to_csv(path, index=False)
    return path


def _one_line_error(code: int, out: str, err: str, expected: int) -> str:
    assert code == expected, err
    assert out == "" and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "internal error" not in err and "Traceback" not in err
    return err


def test_timestamp_error_names_the_no_timestamp_flag_which_works(tmp_path, capsys):
    """issue 8: 'pass timestamp_col=False' had no CLI equivalent."""
    path = tmp_path / "r.csv"
    path.write_text("u,i,r,when\n1,10,4,yesterday\n2,10,3,today\n2,11,5,now\n")
    err = _one_line_error(*run(capsys, "train", "--ratings", path, "--out", tmp_path / "m"), 3)
    assert "--no-timestamp" in err and "timestamp_col" not in err and "line 2" in err
    code, out, err = run(capsys, "train", "--ratings", path, "--no-timestamp", "--split", "none",
                         "--epochs", 1, "--out", tmp_path / "m", "--json")
    assert code == 0, err
    assert json.loads(out)["n_train"] == 3
    err = _one_line_error(*run(capsys, "train", "--ratings", path, "--no-timestamp",
                               "--timestamp-col", "3", "--out", tmp_path / "m"), 2)
    assert "--no-timestamp" in err and "--timestamp-col" in err


def test_separator_advice_names_sep_flag_and_tab_is_typable(tmp_path, capsys):
    """issue 8: 'pass sep=' on the CLI; and --sep '\\t' (as a shell passes it) means a tab."""
    path = tmp_path / "r.txt"
    path.write_text("1\t10\t4\n2\t10\t3\n2\t11\t5\n")
    err = _one_line_error(*run(capsys, "train", "--ratings", path, "--sep", ",", "--out",
                               tmp_path / "m"), 3)
    assert "--sep '\\t'" in err and "sep=" not in err
    code, out, err = run(capsys, "train", "--ratings", path, "--sep", "\\t", "--split", "none",
                         "--epochs", 1, "--out", tmp_path / "m", "--json")
    assert code == 0, err


def test_header_flag_reads_a_numeric_header(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("1,2,3\n1,10,4\n2,10,3\n2,11,5\n")  # a header made of numbers
    code, out, err = run(capsys, "train", "--ratings", path, "--header", "--split", "none",
                         "--epochs", 1, "--out", tmp_path / "m", "--json")
    assert code == 0, err
    assert json.loads(out)["n_train"] == 3


def test_missing_rating_column_is_not_a_separator_problem(tmp_path, capsys):
    """issue 8: a user,item file was reported as 'cannot detect the separator'. Since issue 13
    such a file is read as implicit feedback, and a warning says so and names --implicit."""
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\n1,10\n2,10\n2,11\n")
    code, out, err = run(capsys, "train", "--ratings", path, "--model", "popularity",
                         "--split", "none", "--out", tmp_path / "m")
    assert code == 0, err
    assert err.startswith("warning: clicks.csv has two columns and no rating column")
    assert "--implicit" in err and "separator" not in err


def test_binary_file_named_csv_is_not_an_encoding_problem(tmp_path, capsys):
    """issue 8: a binary .csv was reported as a latin-1 problem."""
    path = tmp_path / "ratings.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    err = _one_line_error(*run(capsys, "train", "--ratings", path, "--out", tmp_path / "m"), 3)
    assert "not a text table" in err and "latin-1" not in err and "--encoding" not in err
    zipped = tmp_path / "zipped.csv"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    err = _one_line_error(*run(capsys, "train", "--ratings", zipped, "--out", tmp_path / "m"), 3)
    assert "zip" in err


def test_unknown_split_is_refused_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    """--split u9 with --dataset ml-100k used to load (or download) ml-100k first."""
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path / "nothing-here"))
    err = _one_line_error(*run(capsys, "train", "--dataset", "ml-100k", "--split", "u9"), 2)
    assert "u9" in err and "--split" in err and "download" not in err


def test_symlink_loop_and_dangling_link_are_named(tmp_path, capsys):
    """issue 8: a model path that is a symlink loop was reported as 'does not exist'."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    err = _one_line_error(*run(capsys, "predict", tmp_path / "a", 1, 10), 6)
    assert "symbolic link loop" in err and "does not exist" not in err
    (tmp_path / "c").symlink_to(tmp_path / "gone")
    err = _one_line_error(*run(capsys, "predict", tmp_path / "c", 1, 10), 6)
    assert "symbolic link to" in err and "gone" in err


def test_shape_mismatch_is_one_line(ratings_file, tmp_path, capsys):
    """issue 8: a model whose weights do not fit its config printed three lines of torch."""
    model = tmp_path / "m"
    code, _, err = run(capsys, "train", "--ratings", ratings_file, "--epochs", 1, "--factors", 4,
                       "--out", model, "--quiet")
    assert code == 0, err
    meta = json.loads((model / "model.json").read_text())
    meta["params"]["n_factors"] = 3
    (model / "model.json").write_text(json.dumps(meta))
    err = _one_line_error(*run(capsys, "predict", model, 1, 10), 6)
    assert "size mismatch" in err and "damaged or inconsistent" in err


def test_incomplete_local_dataset_names_the_missing_file(tmp_path, capsys, monkeypatch):
    """issue 8: $COLLABKIT_DATA/ml-100k without u.item was reported as a failed download."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.genre", "u.user"):
        (folder / name).write_text("")
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path))
    err = _one_line_error(*run(capsys, "train", "--dataset", "ml-100k", "--split", "random"), 4)
    assert "u.item" in err and "incomplete" in err and "download" not in err.split(".")[0]
    assert str(folder) in err


def test_divergent_learning_rate_is_a_fit_error_not_an_internal_one(tmp_path, capsys):
    """issue 8: `train --dataset ml-latest-small --lr 1e6` ended in a torch linalg error."""
    err = _one_line_error(*run(capsys, "train", "--dataset", "ml-latest-small", "--lr", "1e6",
                               "--out", tmp_path / "m", "--quiet"), 5)
    assert "diverged" in err and "--lr 1e+06" in err and "lr=" not in err
    assert not (tmp_path / "m").exists()


def test_datasets_path_prints_a_folder_and_exits_1_when_absent(tmp_path, capsys, monkeypatch):
    """issue 8: `datasets path` exited 4 (its help says 1) and printed no folder."""
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path / "none"))
    code, out, err = run(capsys, "datasets", "path", "ml-1m")
    cache = Path(os.environ["COLLABKIT_CACHE"]) / "movielens" / "ml-1m"
    assert code == 1 and out.strip() == str(cache) and "collabkit datasets download ml-1m" in err
    code, out, _ = run(capsys, "datasets", "path", "ml-1m", "--json")
    assert code == 1 and json.loads(out) == {"name": "ml-1m", "path": str(cache),
                                             "available": False}
    code, out, _ = run(capsys, "datasets", "path", "ml-latest-small")
    assert code == 0 and Path(out.strip(), "ratings.csv").is_file()


def test_datasets_list_cuts_nothing_and_matches_the_licenses(capsys, monkeypatch, tmp_path):
    """issue 8: paths and URLs were cut at 80 columns."""
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path / ("a-long-folder-name" * 4)))
    code, out, _ = run(capsys, "datasets", "list")
    assert code == 0 and "…" not in out
    rows = [line.split("│")[1:-1] for line in out.splitlines() if line.startswith("│")]
    column = ["".join(cells[c].strip() for cells in rows) for c in range(4)]  # cells fold
    for name in ("ml-latest-small", "ml-100k", "ml-32m"):
        assert f"https://files.grouplens.org/datasets/movielens/{name}.zip" in column[3]
    assert "ml-latest-small" in column[0] and "src/collabkit/datasets/ml-latest-small" in column[1]
    code, out, _ = run(capsys, "datasets", "list", "--json")
    free = {d["name"]: d["redistributable"] for d in json.loads(out)["datasets"]}
    # the data sets' READMEs: 100k/1m/10m "may not redistribute", the csv ones "may redistribute"
    assert free == {"ml-latest-small": True, "ml-100k": False, "ml-1m": False, "ml-10m": False,
                    "ml-20m": True, "ml-25m": True, "ml-32m": True}


def test_api_errors_keep_python_argument_names(tmp_path):
    """The same condition through the Python API still names the argument, not a flag."""
    from collabkit import load_ratings
    from collabkit.errors import DataError

    path = tmp_path / "r.csv"
    path.write_text("u,i,r,when\n1,10,4,yesterday\n")
    with pytest.raises(DataError, match="timestamp_col=False"):
        load_ratings(path)
    frame = pd.DataFrame({"u": [1], "i": [2]})
    with pytest.raises(DataError, match="rating_col="):
        load_ratings(frame)


def test_y_range_none_trains_a_linear_model(ratings_file, tmp_path, capsys):
    """--y-range accepted only LOW,HIGH: a linear model (y_range=None) had no CLI spelling."""
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--y-range", "none",
                         "--epochs", 1, "--out", tmp_path / "m", "--json")
    assert code == 0, err
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["params"]["y_range"] is None
