"""Sampled (NCF-style) metrics: hand-computed ranks, labelled keys, unseen negatives (issue 13)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from collabkit.data.implicit import to_implicit
from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError
from collabkit.metrics.sampled import evaluate_sampled, sample_negatives, sampled_metrics
from collabkit.models.implicit import Popularity


def test_sampled_metrics_hand_computed_issue_13() -> None:
    scores = np.array([
        [5.0, 1.0, 2.0, 3.0],  # test item first: rank 1
        [2.0, 3.0, 1.0, 0.0],  # one negative above: rank 2
        [1.0, 1.0, 4.0, 0.0],  # a tie counts against it: rank 3
        [0.0, 1.0, 2.0, 3.0],  # last: rank 4
    ])
    m = sampled_metrics(scores, k=2)
    assert set(m) == {"sampled_hr@2", "sampled_ndcg@2", "sampled_n_neg"}  # always labelled
    assert m["sampled_hr@2"] == pytest.approx(2 / 4)
    assert m["sampled_ndcg@2"] == pytest.approx((1.0 + 1 / math.log2(3)) / 4)
    assert m["sampled_n_neg"] == 3.0
    assert sampled_metrics(scores, k=4)["sampled_hr@4"] == pytest.approx(1.0)


def test_sampled_metrics_refuse_bad_input() -> None:
    with pytest.raises(DataError, match="n_neg >= 1"):
        sampled_metrics(np.ones((3, 1)))
    with pytest.raises(ConfigError, match="k must be"):
        sampled_metrics(np.ones((3, 4)), k=0)


def test_sample_negatives_are_distinct_and_unseen() -> None:
    indptr = np.array([0, 3, 4])
    indices = np.array([0, 1, 2, 9])  # user 0 saw 0, 1, 2; user 1 saw 9
    neg = sample_negatives(indptr, indices, np.array([0, 1, 0]), n_items=10, n_neg=7, seed=1)
    assert neg.shape == (3, 7)
    assert sorted(neg[0]) == list(range(3, 10))  # exactly the 7 unseen items
    assert 9 not in neg[1] and len(set(neg[1])) == 7
    with pytest.raises(DataError, match="only 7 items"):
        sample_negatives(indptr, indices, np.array([0]), n_items=10, n_neg=8)


def test_evaluate_sampled_popularity_known_answer() -> None:
    # 12 items; item j is liked by j training users (u0..u11), so popularity ranks j high.
    rows = [(f"u{u}", f"i{j:02d}", 0) for j in range(12) for u in range(j)]
    rows += [("t", "i00", 0), ("t", "i11", 1), ("s", "i01", 0), ("s", "i02", 1)]
    df = pd.DataFrame(rows, columns=["user", "item", "part"]).assign(rating=1.0)
    both = to_implicit(Interactions.from_dataframe(df, timestamp_col=None))
    part = df["part"].to_numpy()
    train, test = both.take(np.flatnonzero(part == 0)), both.take(np.flatnonzero(part == 1))
    model = Popularity().fit(train)
    # training popularity: i00 1 (t), i01 2 (u0, s), i02 2, i03 3, ..., i11 11.
    # t (test i11, seen i00): its 10 candidates i01..i10 are all sampled; i11 is first: rank 1.
    # s (test i02, seen i01): all 10 of i00, i03..i11 are sampled; 9 of them score above
    # i02 (pop 2) and i00 (pop 1) below: rank 10.
    m = evaluate_sampled(model, test, k=10, n_neg=10, seed=0)
    assert m["sampled_hr@10"] == pytest.approx(1.0)
    assert m["sampled_ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(11)) / 2)
    assert evaluate_sampled(model, test, k=9, n_neg=10)["sampled_hr@9"] == pytest.approx(0.5)
