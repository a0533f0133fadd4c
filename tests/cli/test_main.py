"""The CLI's shape (issue 9): one module per command group, added to the root group in
``collabkit.cli.main`` explicitly; no registration by import side effect and no command
module importing another."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

import collabkit.cli
from collabkit.cli.main import cli

CLI_DIR = Path(collabkit.cli.__file__).parent
# the package, the root group, shared parts (distributed: train's flags and rank side, issue 15)
LEAVES = {"__init__", "main", "options", "output", "distributed"}
COMMAND_MODULES = sorted(p.stem for p in CLI_DIR.glob("*.py") if p.stem not in LEAVES)


def _imported(module: str) -> set[str]:
    """Every collabkit.cli module ``module`` imports, at the top or inside a function."""
    tree = ast.parse((CLI_DIR / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m.removeprefix("collabkit.cli.") for m in found if m.startswith("collabkit.cli.")}


def test_command_modules_are_the_expected_ones():
    assert COMMAND_MODULES == ["datasets", "evaluate", "inspect", "loop_report", "lr_find",
                               "predict", "recommend", "retrain", "serve", "train", "tune"]


@pytest.mark.parametrize("module", COMMAND_MODULES + ["options", "output", "distributed"])
def test_issue9_no_command_module_imports_another(module):
    # issue 9: cli/explore.py imported cli/main.py, which imported explore back
    assert not _imported(module) & (set(COMMAND_MODULES) | {"main"}) - {module}


def test_ast_check_sees_imports_inside_functions():
    """The check reads deferred imports too (main.py imports every command module)."""
    assert _imported("main") >= set(COMMAND_MODULES)


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_issue9_importing_a_command_module_registers_nothing(module):
    probe = (f"import json, sys, collabkit.cli.{module} as m; import click; "
             "cmds = [v for v in vars(m).values() if isinstance(v, click.Command)]; "
             "print(json.dumps([sorted(k for k in sys.modules if k.startswith('collabkit.cli.')), "
             "any(isinstance(c, click.Group) and c.name == 'cli' for c in cmds), len(cmds)]))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded, has_root, n_cmds = json.loads(proc.stdout)
    # the module and the shared leaves only: not the root group, not another command
    assert set(loaded) <= {f"collabkit.cli.{module}", "collabkit.cli.options",
                           "collabkit.cli.output", "collabkit.cli.distributed"}
    assert has_root is False and n_cmds >= 1


def test_root_group_has_every_command_once():
    assert sorted(cli.commands) == ["datasets", "evaluate", "explain", "inspect", "loop-report",
                                    "lr-find", "onboard", "plot", "predict", "recommend",
                                    "retrain", "serve", "similar", "train", "tune"]
    assert isinstance(cli.commands["datasets"], click.Group)
    assert sorted(cli.commands["datasets"].commands) == ["download", "list", "path"]


@pytest.mark.parametrize("path", sorted(CLI_DIR.glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_stay_under_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400
