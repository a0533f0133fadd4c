"""The CLI's shared parsing: one ``--param NAME=VALUE`` parser for every command (issue 9)."""

from __future__ import annotations

import pytest

from collabkit.cli.options import parse_params, raw_id
from collabkit.errors import ConfigError


def test_parse_params_known_answers():
    got = parse_params(("layers=100,50", "n-factors=40", "lr=0.01", "y_range=none",
                        "refit_users=False", "optimizer=adam", "name==x"))
    assert got == {"layers": (100, 50), "n_factors": 40, "lr": 0.01, "y_range": None,
                   "refit_users": False, "optimizer": "adam", "name": "=x"}
    assert [type(v) for v in (got["n_factors"], got["lr"])] == [int, float]


@pytest.mark.parametrize("pair", ["bad", "=3", "two words=3", ""])
def test_issue9_malformed_pair_names_the_pair_and_the_form(pair):
    with pytest.raises(ConfigError) as e:
        parse_params(("lr=0.1", pair))
    assert str(e.value) == (f"--param {pair!r} must look like NAME=VALUE, "
                            "e.g. --param n_factors=40")


def test_raw_id_follows_the_vocabulary_dtype():
    class Vocab:
        def __init__(self, kind: str) -> None:
            import numpy as np

            self.all_ids = np.array([1, 2]) if kind == "int" else np.array(["a", "b"])

    assert raw_id(Vocab("int"), "7") == 7 and raw_id(Vocab("int"), "x7") == "x7"
    assert raw_id(Vocab("str"), "7") == "7"
