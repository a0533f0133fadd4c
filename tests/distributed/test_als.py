"""ALS and iALS across ranks (issue 15, part 2): 2 and 4 gloo ranks, each solving its block
of rows against the gathered other side, give the factors a one-process ``fit`` gives, and the
same held-out RMSE (ALS) and Recall@10 (iALS); the file rank 0 saves loads in a plain
process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from collabkit.metrics.ranking import recall_at_k
from collabkit.models.als import BiasedALS
from collabkit.models.implicit import ImplicitALS
from collabkit.models.persist import load_model
from collabkit.testing.ranks import _planted_split

from .conftest import ALS, IALS


def _rmse(model: Any) -> float:
    _, test = _planted_split({})
    pred = model.predict(test.user_vocab.ids(test.users), test.item_vocab.ids(test.items))
    return float(np.sqrt(np.mean((pred["prediction"].to_numpy() - test.ratings) ** 2)))


def _recall(model: Any) -> float:
    _, test = _planted_split({})
    raw_u = test.user_vocab.ids(test.users)
    raw_i = test.item_vocab.ids(test.items)
    users = np.unique(raw_u)
    recs = model.recommend(users, n=10)
    got = recs.groupby("user")["item"].apply(list)
    return float(np.mean([recall_at_k(got.get(u, []), set(raw_i[raw_u == u]), 10)
                          for u in users]))


def _tables(model: Any, kind: str) -> list[torch.Tensor]:
    if kind == "als":
        return [model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_]
    return [model.user_factors_, model.item_factors_]


@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("kind", ["als", "ials"])
def test_world_2_and_4_give_the_one_process_factors(suite: Callable[[int], dict[str, Any]],
                                                    kind: str, size: int) -> None:
    train, _ = _planted_split({})
    cls = BiasedALS if kind == "als" else ImplicitALS
    ref = cls(**(ALS if kind == "als" else IALS)).fit(train)
    score = _rmse if kind == "als" else _recall
    got = load_model(suite(size)["dir"] / kind)
    assert got.user_vocab_ == ref.user_vocab_ and got.item_vocab_ == ref.item_vocab_
    for a, b in zip(_tables(got, kind), _tables(ref, kind), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert score(got) == pytest.approx(score(ref), abs=1e-6)
    assert 0 < score(ref)  # a real number to agree on, not two zeros
