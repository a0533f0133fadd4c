"""Full-ranking evaluation: hand-computed metrics and the seen-item exclusion."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from collabkit.data.implicit import to_implicit
from collabkit.data.interactions import Interactions
from collabkit.errors import DataError
from collabkit.metrics.fullrank import (
    evaluate_ranking,
    ranking_metrics,
    reciprocal_rank_batch,
    topk_unseen,
)
from collabkit.models.implicit import Popularity


def test_reciprocal_rank_known_answers() -> None:
    rec = np.array([[3, 1, 4], [0, 2, 5], [7, 8, 9]])
    rr = reciprocal_rank_batch(rec, np.array([0, 0, 1, 2]), np.array([1, 5, 0, 6]), k=3)
    np.testing.assert_allclose(rr, [0.5, 1.0, 0.0])
    # a hit beyond k does not count
    np.testing.assert_allclose(reciprocal_rank_batch(rec, np.array([0]), np.array([4]), k=2),
                               [0.0, 0.0, 0.0])


def test_ranking_metrics_hand_computed() -> None:
    rec = np.array([[3, 1, 4], [0, 2, 5]])
    users, items = np.array([0, 0, 1]), np.array([1, 5, 0])
    pop = np.linspace(0.0, 0.9, 10)  # item j has popularity j / 10
    m = ranking_metrics(rec, users, items, 3, n_items=10, popularity=pop)
    d2 = 1 / math.log2(3)
    assert m["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["ndcg"] == pytest.approx((d2 / (1 + d2) + 1.0) / 2)
    assert m["hit_rate"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx((0.5 / 2 + 1.0) / 2)
    assert m["mrr"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["coverage"] == pytest.approx(6 / 10)
    assert m["mean_popularity"] == pytest.approx(np.mean([3, 1, 4, 0, 2, 5]) / 10)


def test_ranking_metrics_refuse_rows_without_test_items() -> None:
    with pytest.raises(DataError, match="every row"):
        ranking_metrics(np.array([[0], [1]]), np.array([0]), np.array([0]), 1, n_items=2)


def _tables() -> tuple[Interactions, Interactions]:
    rows = [  # (user, item, part)
        ("u1", "a", 0), ("u1", "b", 0), ("u2", "a", 0), ("u2", "c", 0), ("u3", "a", 0),
        ("u3", "b", 0), ("u4", "d", 0),
        ("u1", "c", 1), ("u2", "b", 1), ("u3", "z", 1), ("u9", "a", 1)]
    df = pd.DataFrame(rows, columns=["user", "item", "part"]).assign(rating=1.0)
    both = to_implicit(Interactions.from_dataframe(df, timestamp_col=None))
    part = df["part"].to_numpy()
    return both.take(np.flatnonzero(part == 0)), both.take(np.flatnonzero(part == 1))


def test_topk_unseen_leaves_out_training_items() -> None:
    train, _ = _tables()
    model = Popularity().fit(train)  # popularity: a 3, b 2, c 1, d 1
    u1 = model.user_vocab_.index(["u1"])
    top = model.item_vocab_.ids(topk_unseen(model, u1, 2)[0])
    assert top.tolist() == ["c", "d"]  # a and b are u1's own
    # fewer unseen items than k: padded with -1
    assert (topk_unseen(model, u1, 4)[0][2:] == -1).all()


def test_evaluate_ranking_on_a_known_case() -> None:
    train, test = _tables()
    result = evaluate_ranking(Popularity().fit(train), test, k=1)
    # u1 gets c (hit), u2 gets b (hit), u3 gets c or d (its test item z was never trained:
    # it counts, and can never be found); u9 is unknown and skipped
    assert result.n_users == 3 and result.skipped_users == 1 and result.n_test == 3
    assert result.metrics["recall"] == pytest.approx(2 / 3)
    assert result.metrics["hit_rate"] == pytest.approx(2 / 3)
    assert "recall@1=0.6667" in str(result)
