"""The snapshot's id look-ups answer as the model's vocabularies do (issue 10: they are dict
hits built once per model, with the vocabulary's loose matching behind them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabkit.serve.engine import load_snapshot


@pytest.mark.parametrize("raw", [1, 260, 2571, "1", " 260", "+260", "260 ", 1.0, 260.0, "x",
                                 -5, 10**30, "", "0001", True, "load-1-1", "v-3f2a", "12a",
                                 "-0", "\u0661"])
def test_item_and_user_index_match_the_vocabulary(small_model_dir: Path, raw: Any) -> None:
    snap = load_snapshot(small_model_dir)
    m = snap.model
    assert snap.item_index(raw) == int(m.item_vocab_.index([raw])[0])
    assert snap.user_index(raw) == int(m.user_vocab_.index([raw])[0])


def test_string_vocabulary_lookups_match(tmp_path: Path) -> None:
    import pandas as pd

    import collabkit
    from collabkit.data.interactions import Interactions

    frame = pd.DataFrame({"user": ["a", "b", "b", " c", "12"], "item": ["x", "y", "x", "z", "y"],
                          "rating": [4.0, 3.0, 5.0, 2.0, 1.0]})
    model = collabkit.BiasedMF(n_factors=2, epochs=1, random_state=0).fit(
        Interactions.from_dataframe(frame, timestamp_col=None, rating_range=(1.0, 5.0)))
    snap = load_snapshot(model.save(str(tmp_path / "m")))
    assert snap.model.user_vocab_.all_ids.dtype.kind not in "iu"  # a str vocabulary
    for raw in ["a", " a", "a ", "c", " c", "12", 12, 12.0, "x", "nobody", ""]:
        assert snap.user_index(raw) == int(snap.model.user_vocab_.index([raw])[0]), raw
    for raw in ["x", " x", "y", "w", 1]:
        assert snap.item_index(raw) == int(snap.model.item_vocab_.index([raw])[0]), raw


def test_every_known_id_has_its_own_index(small_model_dir: Path) -> None:
    snap = load_snapshot(small_model_dir)
    users = snap.model.user_vocab_.all_ids.tolist()
    items = snap.model.item_vocab_.all_ids.tolist()
    assert [snap.user_index(u) for u in users] == list(range(len(users)))
    assert [snap.item_index(i) for i in items] == list(range(len(items)))
    assert snap.known_user(users[0]) and not snap.known_user("nobody")


def test_issue13_a_recency_ranker_folds_in_a_users_past_oldest_first(tmp_path: Path) -> None:
    """Issue 13: for a model with ``recency`` the service passes the training interactions
    oldest first and stored feedback after them in the order it came, a re-interacted item
    moving last (the newest), so the fold-in weighs them as the model does."""
    import pandas as pd

    from collabkit.data.implicit import read_interactions
    from collabkit.models.implicit import ItemKNN
    from collabkit.serve.store import StoredRating

    df = pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": [3, 1, 2, 1, 2],
                       "timestamp": [30, 10, 20, 1, 2]})
    model = ItemKNN(recency=2.0).fit(read_interactions(df, timestamp_col="timestamp"))
    snap = load_snapshot(model.save(str(tmp_path / "m")))
    assert list(snap.training_ratings("a")) == [1, 2, 3]  # by time, not by item
    stored = [StoredRating("1", 1.0, 40.0)]
    assert list(snap.all_ratings("a", stored)) == [2, 3, 1]
    u = int(model.user_vocab_.index(["a"])[0])
    np.testing.assert_allclose(model.fold_in(list(snap.training_ratings("a"))),
                               model._score_users(np.array([u]))[0].numpy(), rtol=1e-6)
