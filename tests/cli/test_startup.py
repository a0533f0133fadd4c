"""Issue 8 (frictions): `collabkit --help`/`--version` must not import torch, pandas or numpy.

Importing torch took 5-10 s before any argument was parsed. This is a correctness test of
what gets imported (the timing itself is in benchmarks/cli_startup.py, not asserted here).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "numpy", "pyarrow", "numba", "matplotlib", "collabkit.models")

_PROBE = """
import contextlib, io, json, sys
from collabkit.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main({argv!r})
print(json.dumps([code, sorted(m for m in {heavy!r} if m in sys.modules)]))
"""


def _imported_by(argv: list[str]) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    code, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    return code, heavy


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["train", "--help"],
                                  ["recommend", "--help"], ["inspect", "--help"]])
def test_help_and_version_import_nothing_heavy(argv):
    code, heavy = _imported_by(argv)
    assert code == 0 and heavy == []


@pytest.mark.parametrize("argv", [["datasets", "path", "ml-latest-small"], ["datasets", "list"]])
def test_dataset_commands_import_nothing_heavy(argv):
    """They read a table of names and look for folders: no torch, pandas or numpy."""
    code, heavy = _imported_by(argv)
    assert code == 0 and heavy == []


def test_import_collabkit_is_lazy_but_complete():
    probe = ("import sys, collabkit; before = 'torch' in sys.modules; "
             "names = [getattr(collabkit, n) for n in collabkit.__all__]; "
             "print(before, 'torch' in sys.modules, len(names), collabkit.BiasedMF.__name__)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True", str(len(__import__("collabkit").__all__)),
                                   "BiasedMF"]
