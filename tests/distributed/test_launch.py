"""Launching from the command line (issue 15): ``collabkit train --nproc 2`` and ``torchrun
--standalone --nproc-per-node 2 -m collabkit train`` write one model folder that loads in a
plain process; a rank killed mid-epoch fails the job with one error line and no folder; an
error on the ranks is one line in CLI words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from collabkit.distributed.replicate import KILL_ENV
from collabkit.models.persist import load_model
from collabkit.testing.synthetic import planted_low_rank

pytestmark = pytest.mark.timeout(180)

TRAIN = ["train", "--split", "random", "--epochs", "2", "--wd", "0.05", "--factors", "8",
         "--batch-size", "256", "--no-refit", "--param", "refit_users=false", "--json"]


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dist") / "planted.csv"
    planted_low_rank(120, 80, k=3, density=0.25, seed=0).data.to_dataframe().to_csv(
        path, index=False)
    return path


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         module: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, *(module or ["-m", "collabkit"]), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=170,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


@pytest.mark.parametrize("launcher", ["nproc", "torchrun"])
def test_two_ranks_write_one_model_that_loads_without_a_group(
        launcher: str, ratings: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = [*TRAIN, "--ratings", str(ratings), "--out", str(out)]
    if launcher == "nproc":
        proc = _run([*args, "--nproc", "2"], tmp_path)
    else:
        proc = _run(args, tmp_path, module=["-m", "torch.distributed.run", "--standalone",
                                            "--nproc-per-node", "2", "-m", "collabkit"])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # rank 0 alone printed: exactly one JSON object
    assert result["distributed"]["world"] == 2
    assert result["distributed"]["tier"] == "replicate"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    model = load_model(out)
    pred = model.predict(["0", "1"], ["0", "1"])["prediction"].to_numpy()
    assert np.isfinite(pred).all() and result["rmse"] < result["baselines"]["global mean"]["rmse"]


def test_a_killed_rank_fails_the_job_with_one_line_and_no_model(
        ratings: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    proc = _run([*TRAIN, "--ratings", str(ratings), "--out", str(out), "--nproc", "2"],
                tmp_path, env={KILL_ENV: "1:3"})
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1] == ("error: rank 1 of 2 (--nproc 2) was killed by SIGKILL; the other ranks "
                         "were stopped and no model was saved"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_an_error_on_the_ranks_is_one_line_in_cli_words(ratings: Path, tmp_path: Path) -> None:
    proc = _run([*TRAIN, "--ratings", str(ratings), "--out", str(tmp_path / "m"),
                 "--nproc", "2", "--memory-per-rank", "1K"], tmp_path)
    assert proc.returncode == 2  # the ranks' ConfigError's exit code
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: rank ")
    assert "the replicate tier needs" in lines[0] and "over --memory-per-rank 1 KB" in lines[0]
    assert "the rowwise tier would fit with" in lines[0]


def test_the_reported_failure_is_the_killed_rank_not_the_peer_that_aborted_after_it() -> None:
    from types import SimpleNamespace

    from collabkit.distributed.launch import _root_cause

    def fail(code: int) -> SimpleNamespace:
        return SimpleNamespace(exitcode=code)

    # rank 1 was SIGKILLed; rank 0 then died of a C++ terminate (SIGABRT) on the lost peer,
    # rank 2 was stopped by the launcher (SIGTERM), rank 3 exited on gloo's closed connection
    failures = {0: fail(-6), 1: fail(-9), 2: fail(-15), 3: fail(1)}
    assert _root_cause(failures, (0, failures[0]))[0] == 1
    # an abort alone is still a signal death, ahead of the ranks that exited with a code
    assert _root_cause({0: fail(1), 1: fail(-6)}, (0, fail(1)))[0] == 1
    # no signal death: the launcher's first failure
    only = {0: fail(-15), 1: fail(2)}
    assert _root_cause(only, (1, only[1]))[0] == 1
