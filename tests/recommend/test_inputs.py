"""collabkit.recommend.inputs (issue 9: the fold-in input parsing, public since cold start uses
it): known answers and error messages that name the offending id or column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabkit.data.vocab import Vocabulary
from collabkit.errors import ConfigError, DataError
from collabkit.recommend.inputs import check_options, group_arrays, group_ratings, ratings_pairs

VOCAB = Vocabulary(["a", "b", "c"])


def test_ratings_pairs_from_each_form() -> None:
    for given in ({"b": 4, "z": 2.5}, pd.Series([4.0, 2.5], index=["b", "z"]),
                  pd.DataFrame({"item": ["b", "z"], "rating": [4, 2.5]})):
        ids, values = ratings_pairs(given, key="item")
        assert list(ids) == ["b", "z"] and values.tolist() == [4.0, 2.5]
        assert values.dtype == np.float64


def test_ratings_pairs_errors() -> None:
    with pytest.raises(DataError, match=r"column 'rating' not found; columns are \['item', 'r'\]"):
        ratings_pairs(pd.DataFrame({"item": ["a"], "r": [1.0]}), key="item")
    with pytest.raises(DataError, match="ratings must be numbers"):
        ratings_pairs({"a": "five"}, key="item")
    with pytest.raises(DataError, match=r"a \{user: rating\} mapping, a Series or a DataFrame"):
        ratings_pairs([("a", 1.0)], key="user")  # type: ignore[arg-type]


def test_group_ratings_known_answer() -> None:
    frame = pd.DataFrame({"u": ["x", "y", "x", "y", "x"], "i": ["c", "a", "zz", "b", "a"],
                          "r": [5.0, 1.0, 3.0, 2.0, 4.0]})
    keys, rows, idx, values, n_unknown = group_ratings(VOCAB, frame, "u", "i", "r", what="item")
    assert list(keys) == ["x", "y"]  # first appearance
    assert rows.tolist() == [0, 1, 1, 0] and idx.tolist() == [2, 0, 1, 0]
    assert values.tolist() == [5.0, 1.0, 2.0, 4.0]
    assert n_unknown.tolist() == [1, 0]  # x's "zz" is not in the vocabulary


def test_group_errors_name_the_id() -> None:
    """The ids and ratings in messages are plain values, not numpy reprs (np.str_('b'))."""
    frame = pd.DataFrame({"u": ["x", "x"], "i": ["a", "a"], "r": [5.0, 4.0]})
    with pytest.raises(DataError, match="item 'a' is rated twice \\(by 'x'\\)"):
        group_ratings(VOCAB, frame, "u", "i", "r", what="item")
    with pytest.raises(DataError, match="column 'rating' not found"):
        group_ratings(VOCAB, frame, "u", "i", "rating", what="item")
    with pytest.raises(DataError, match="rating nan for item 'b' is not a finite number"):
        group_arrays(VOCAB, np.array([0]), np.zeros(1, np.int64), np.array(["b"]),
                     np.array([np.nan]), what="item")
    with pytest.raises(DataError, match="rating 9 for item 'c' is outside"):
        group_arrays(VOCAB, np.array([0]), np.zeros(1, np.int64), np.array(["c"]),
                     np.array([9.0]), what="item", rating_range=(1.0, 5.0))


@pytest.mark.parametrize(("reg", "n_iter", "prior", "message"), [
    ("big", 2, "zero", "reg must be 'population', 'matched' or a number >= 0"),
    (-1.0, 2, "zero", "reg must be"),
    (1.0, -1, "zero", "n_iter must be an integer >= 0"),
    (1.0, 2, "median", "prior must be 'mean' or 'zero'"),
])
def test_check_options(reg: object, n_iter: int, prior: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_options(reg, n_iter, prior)  # type: ignore[arg-type]
