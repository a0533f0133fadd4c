"""issue 13: collabkit.fit and collabkit.evaluate take implicit data and kinds consistently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import collabkit
from collabkit.errors import ConfigError
from collabkit.metrics.evaluate import EvalReport
from collabkit.metrics.ranking_report import RankingReport
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def clicks():
    rng = np.random.default_rng(0)
    rows = [(u, int(i)) for u in range(60)
            for i in rng.choice(np.arange(15) + 15 * (u % 3), 8, replace=False)]
    return collabkit.read_interactions(pd.DataFrame(rows, columns=["user", "item"]))


def test_fit_and_evaluate_a_ranker(clicks):
    train, test = collabkit.split(clicks, "user", test_frac=0.25, seed=0)
    model = collabkit.fit(train, "itemknn")
    rep = collabkit.evaluate(model, test, k=10)
    assert isinstance(rep, RankingReport) and rep.k == 10
    assert list(rep.table.index) == ["itemknn", "popularity"]
    assert rep.metric("recall") > rep.table.loc["popularity", "recall"]


def test_evaluate_a_rating_model_is_unchanged():
    data = planted_low_rank(n_users=30, n_items=20, seed=0).data
    train, test = collabkit.split(data, "random", seed=0)
    rep = collabkit.evaluate(collabkit.fit(train, "bias"), test)
    assert isinstance(rep, EvalReport) and rep.rmse > 0


def test_rating_kind_on_implicit_data_is_refused(clicks):
    with pytest.raises(ConfigError, match="model 'dot' predicts ratings.*choose an implicit "
                                          "kind: bpr, ease, gfcf, ials, itemknn, popularity"):
        collabkit.fit(clicks, "dot")


def test_ranker_on_ratings_reads_them_as_weights():
    """The ratings become confidence weights; to_implicit counts each rated pair once."""
    data = planted_low_rank(n_users=30, n_items=20, seed=0).data
    weighted = collabkit.fit(data, "popularity")
    assert weighted.seen_ratings_.max() > 1.0
    plain = collabkit.fit(collabkit.to_implicit(data), "popularity")
    assert set(plain.seen_ratings_.tolist()) == {1.0}
