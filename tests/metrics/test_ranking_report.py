"""issue 13: a ranker's full-ranking scores with popularity and item-kNN beside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabkit.data.implicit import read_interactions
from collabkit.errors import ConfigError, DataWarning
from collabkit.metrics.ranking_report import evaluate_implicit, training_rows
from collabkit.models.baseline import BiasBaseline
from collabkit.models.implicit import EASE
from collabkit.testing import planted_low_rank


def _checkerboard():
    """Users 0-9 use items 0-4, users 10-19 items 5-9; each lacks one item of its block,
    which is its test item."""
    miss = {u: 5 * (u >= 10) + u % 5 for u in range(20)}
    rows = [(u, 5 * (u >= 10) + j) for u in range(20) for j in range(5)]
    df = pd.DataFrame(rows, columns=["user", "item"])
    data = read_interactions(df)
    test_mask = np.array([miss[u] == i for u, i in rows])
    return data.take(np.flatnonzero(~test_mask)), data.take(np.flatnonzero(test_mask))


def test_known_answer_model_first_baselines_beside():
    train, test = _checkerboard()
    rep = evaluate_implicit(EASE(reg=1.0).fit(train), test, k=1)
    assert list(rep.table.index) == ["ease", "popularity", "itemknn"]
    assert rep.metric("recall") == 1.0 and rep.metric("ndcg") == 1.0  # the missing item first
    assert rep.table.loc["itemknn", "recall"] == 1.0  # co-occurrence finds it too
    # popularity: every item has 9 users, the tie breaks by index: one list for all users
    assert rep.table.loc["popularity", "recall"] < 1.0
    d = rep.to_dict()
    assert d["recall@1"] == 1.0 and set(d["baselines"]) == {"popularity", "itemknn"}
    assert rep.n_users == 20 and rep.n_test == 20 and rep.skipped_users == 0


def test_training_rows_rebuild_the_fitted_pairs():
    train, _ = _checkerboard()
    rows = training_rows(EASE(reg=1.0).fit(train))
    got = set(zip(rows.user_vocab.ids(rows.users).tolist(), rows.item_vocab.ids(rows.items)
                  .tolist(), strict=True))
    want = set(zip(train.user_vocab.ids(train.users).tolist(),
                   train.item_vocab.ids(train.items).tolist(), strict=True))
    assert got == want and rows.implicit


def test_overlap_with_training_warns():
    train, _ = _checkerboard()
    m = EASE(reg=1.0).fit(train)
    with pytest.warns(DataWarning, match="80 of 80 held-out interactions are among"):
        evaluate_implicit(m, train, k=1, baselines=False)


def test_rating_model_is_refused():
    data = planted_low_rank(n_users=20, n_items=10, seed=0).data
    with pytest.raises(ConfigError, match="full-ranking evaluation is for implicit"):
        evaluate_implicit(BiasBaseline().fit(data), data)
