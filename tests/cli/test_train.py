"""``collabkit train`` asks the model which flags apply (issue 9): a generic flag or a
``--param`` the chosen kind does not take is refused in one line naming what it does take."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collabkit.cli.main import main
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = planted_low_rank(n_users=60, n_items=40, density=0.3, seed=9)
    df = planted.data.to_dataframe()
    df["rating"] = np.clip(np.round(df["rating"]), 1, 5)
    path = tmp_path_factory.mktemp("d") / "ratings.csv"
    df.to_csv(path, index=False)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


SVDPP_TAKES = ("it takes --factors, --epochs, --lr, --batch-size, --valid-frac, --seed, "
               "--param reg, --param reg_bias, --param init_std, --param clip, "
               "--param n_threads, --param fallback")


def test_issue9_svdpp_refuses_flags_it_does_not_take(ratings_file, tmp_path, capsys):
    # issue 9: exited 0 and silently dropped --wd, --y-range and --valid-frac (issue 14:
    # svdpp now carves validation rows, so it takes --valid-frac)
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--model", "svdpp",
                         "--wd", 7, "--y-range", "0,9", "--valid-frac", 0.5,
                         "--out", tmp_path / "m")
    assert code == 2 and out == ""
    assert err == f"error: model 'svdpp' does not take --wd, --y-range; {SVDPP_TAKES}\n"
    assert not (tmp_path / "m").exists()  # refused before anything was trained or written


def test_issue9_svdpp_refuses_param_it_does_not_take(ratings_file, tmp_path, capsys):
    # issue 9: --param wd=7 was dropped as silently as --wd 7
    code, _, err = run(capsys, "train", "--ratings", ratings_file, "--model", "svdpp",
                       "--param", "wd=7", "--out", tmp_path / "m")
    assert code == 2
    assert err == f"error: model 'svdpp' does not take --param wd; {SVDPP_TAKES}\n"


@pytest.mark.parametrize("args, refused", [
    (["--model", "mean", "--lr", "3"], "model 'mean' does not take --lr; it takes no parameters"),
    (["--model", "bias", "--epochs", "3", "--factors", "4"],
     "model 'bias' does not take --factors, --epochs; it takes no parameters"),
    (["--param", "callback=print"], "model 'dot' does not take --param callback; it takes "
                                    "--factors, --epochs, --lr, --wd, --batch-size, --y-range"),
])
def test_issue9_other_refusals_name_the_flag(args, refused, ratings_file, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--ratings", ratings_file, *args, "--out", tmp_path / "m")
    assert code == 2 and refused in err and len(err.splitlines()) == 1


def test_unknown_kind_is_refused_before_the_data_is_read(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--ratings", tmp_path / "missing.csv", "--model", "svm")
    assert code == 2
    assert err.startswith("error: unknown model kind 'svm'; known kinds: ")


def test_defaults_of_flags_a_model_lacks_are_not_refused(ratings_file, tmp_path, capsys):
    """--valid-frac (0.1) and --seed have defaults: a model without them still trains, with
    the seed going to the split only; flags it does take reach it. (als: svdpp, the model
    this used, takes --valid-frac since issue 14.)"""
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--model", "als",
                         "--epochs", 2, "--factors", 3, "--param", "reg=0.05",
                         "--out", tmp_path / "m", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["kind"] == "als" and res["epochs"] == 2 and res["valid_rmse"] is None
    saved = json.loads((tmp_path / "m" / "model.json").read_text())["params"]
    assert (saved["n_factors"], saved["epochs"], saved["reg"], saved["random_state"]) == (
        3, 2, 0.05, 42)
    assert "valid_frac" not in saved and "wd" not in saved


def test_flags_a_model_takes_reach_it(ratings_file, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--ratings", ratings_file, "--epochs", 2, "--wd", 0.05,
                       "--valid-frac", 0.2, "--y-range", "none", "--param", "refit-users=false",
                       "--seed", 3, "--out", tmp_path / "m", "--quiet")
    assert code == 0, err
    saved = json.loads((tmp_path / "m" / "model.json").read_text())["params"]
    assert (saved["wd"], saved["valid_frac"], saved["y_range"], saved["refit_users"],
            saved["random_state"]) == (0.05, 0.2, None, False, 3)
    assert "callback" not in saved  # the progress bar is the CLI's, never saved


def test_progress_bar_only_for_models_that_report_epochs(ratings_file, tmp_path, capsys):
    """dot takes a callback: its bar counts the epochs and names its closed-form passes;
    bias takes none, so no bar appears (issue 9: asked of the model, not its kind)."""
    code, _, err = run(capsys, "train", "--ratings", ratings_file, "--epochs", 2,
                       "--out", tmp_path / "dot")
    assert code == 0, err
    assert "epoch 2/2" in err and "closed-form passes done" in err
    code, _, err = run(capsys, "train", "--ratings", ratings_file, "--model", "bias",
                       "--out", tmp_path / "bias")
    assert code == 0 and "epoch" not in err


def test_recipe_chapter_on_the_cli_reports_mse(ratings_file, tmp_path, capsys):  # issue 12
    code, out_, err = run(capsys, "train", "--ratings", ratings_file, "--recipe", "chapter",
                          "--epochs", 1, "--out", tmp_path / "m", "--json")
    assert code == 0, err
    import json

    res = json.loads(out_)
    assert res["recipe"] == "chapter" and abs(res["valid_mse"] - res["valid_rmse"] ** 2) < 1e-12
    saved = json.loads((tmp_path / "m" / "model.json").read_text())["params"]
    assert (saved["optimizer"], saved["batch_size"], saved["valid_frac"]) == ("adamw", 64, 0.2)


def test_issue14_train_prints_svdpps_chosen_reg_and_saves_it(ratings_file, tmp_path, capsys):
    """issue 14: svdpp chooses reg on its validation rows; train says what it chose."""
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--model", "svdpp",
                         "--factors", 3, "--epochs", 10, "--lr", 0.05, "--out", tmp_path / "m")
    assert code == 0, err
    saved = json.loads((tmp_path / "m" / "model.json").read_text())
    tried = saved["extra"]["reg_tried"]
    assert saved["params"]["reg"] == "auto" and len(tried) >= 1
    assert "regularisation chosen on" in out and "validation rows: reg=" in out
    code, out, err = run(capsys, "train", "--ratings", ratings_file, "--model", "svdpp",
                         "--factors", 3, "--epochs", 10, "--lr", 0.05, "--json", "--no-refit",
                         "--out", tmp_path / "j")
    chosen = json.loads(out)["chosen"]
    assert code == 0 and chosen["strength"] == "reg"
    assert chosen["reg"] == min(chosen["reg_tried"], key=lambda t: t[1])[0]
