"""``collabkit lr-find --param``: the same parser and checks as ``train`` (issue 9)."""

from __future__ import annotations

import pytest

from collabkit.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_issue9_lr_find_refuses_a_malformed_param(tmp_path, capsys):
    # issue 9: lr-find dropped "bad" silently and swept with the defaults
    code, out, err = run(capsys, "lr-find", "--ratings", tmp_path / "r.csv", "--param", "bad",
                         "--png", tmp_path / "lr.png")
    assert (code, out) == (2, "")
    assert err == ("error: --param 'bad' must look like NAME=VALUE, "
                   "e.g. --param n_factors=40\n")
    assert not (tmp_path / "lr.png").exists()


def test_issue9_lr_find_refuses_a_param_the_model_does_not_take(tmp_path, capsys):
    code, _, err = run(capsys, "lr-find", "--ratings", tmp_path / "r.csv", "--model", "svdpp",
                       "--param", "wd=3")
    assert code == 2
    assert err.startswith("error: model 'svdpp' does not take --param wd; it takes "
                          "--param n_factors, --param epochs, --param lr, --param reg, ")
