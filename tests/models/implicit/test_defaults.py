"""Issue 13: each implicit model's defaults are the ones ``benchmarks/implicit_defaults.py`` chose.

The search's record (``benchmarks/results/implicit-defaults.json``) and the constructors must
not drift apart: this reads the JSON only (no data set is needed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from collabkit.models import registry
from collabkit.models.search import search_space

RECORD = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "implicit-defaults.json"
KINDS = ("itemknn", "ials", "ease", "gfcf", "bpr")


def chosen() -> dict[str, Any]:
    return {k: v["chosen"] for k, v in json.loads(RECORD.read_text())["choices"].items()}


def test_issue13_record_covers_every_tunable_implicit_kind() -> None:
    assert sorted(chosen()) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_issue13_constructor_defaults_equal_the_recorded_choice(kind: str) -> None:
    record = chosen()[kind]
    # every searched parameter has a recorded default, and nothing else is recorded; but
    # recency, searched only on timestamped data, is off by default (most data has none)
    space = search_space(kind)
    assert sorted(record) == sorted(p for p in space if p != "recency")
    defaults = registry.get(kind)().get_params()
    if "recency" in space:
        assert defaults["recency"] is None
    for name, value in record.items():
        assert math.isclose(defaults[name], value, rel_tol=1e-12), (kind, name)
        if isinstance(value, int):  # a whole-number setting stays an int in the constructor
            assert isinstance(defaults[name], int), (kind, name)


@pytest.mark.parametrize("kind", KINDS)
def test_issue13_recorded_scores_are_consistent(kind: str) -> None:
    # the record's own arithmetic: old and new defaults score above 0 and no higher than the
    # best found on each data set
    choice = json.loads(RECORD.read_text())["choices"][kind]
    for row in choice["table"].values():
        assert 0.0 < row["new"] <= row["best"] + 1e-12
        assert 0.0 < row["old"] <= row["best"] + 1e-12
