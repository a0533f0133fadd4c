import numpy as np
import pandas as pd
import pytest

from collabkit.data.interactions import Interactions
from collabkit.errors import DataError


def _frame():
    return pd.DataFrame({"user": ["u2", "u1", "u2", "u3"], "item": [10, 10, 20, 30],
                         "rating": [4.0, 3.0, 5.0, 1.0], "timestamp": [4, 3, 2, 1]})


def test_from_dataframe_round_trip():
    data = Interactions.from_dataframe(_frame(), rating_range=(1, 5), name="t")
    assert len(data) == 4 and data.n_users == 3 and data.n_items == 3
    back = data.to_dataframe()
    pd.testing.assert_frame_equal(back, _frame(), check_dtype=False)
    assert data.rating_range == (1.0, 5.0)
    assert "3 users x 3 items, 4 ratings" in repr(data)


def test_take_shares_vocabularies():
    data = Interactions.from_dataframe(_frame())
    part = data.take(np.array([0, 3]))
    assert part.user_vocab is data.user_vocab
    assert part.to_dataframe()["user"].tolist() == ["u2", "u3"]
    assert part.timestamps.tolist() == [4, 1]


def test_missing_column_names_columns():
    with pytest.raises(DataError, match=r"'score' not found; columns are \['user'"):
        Interactions.from_dataframe(_frame(), rating_col="score")


def test_empty_rejected():
    with pytest.raises(DataError, match="empty"):
        Interactions.from_dataframe(_frame().iloc[:0])


def test_titles_and_fingerprint():
    meta = pd.DataFrame({"title": ["Ten", "Twenty"]}, index=pd.Index([10, 20], name="item"))
    data = Interactions.from_dataframe(_frame(), item_meta=meta)
    assert data.titles([20, 30]) == ["Twenty", None]
    other = Interactions.from_dataframe(_frame().assign(rating=[4.0, 3.0, 5.0, 2.0]))
    assert data.fingerprint() != other.fingerprint()
    assert data.fingerprint() == Interactions.from_dataframe(_frame()).fingerprint()
