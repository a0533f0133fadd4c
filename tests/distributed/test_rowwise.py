"""The row-wise sharded tier (issue 15, part 2): 2 and 4 gloo ranks train the same model as
1 process when the initial rows are pinned per global row; the file rank 0 saves loads in a
plain process and predicts what the distributed evaluation computed; uneven shards do not
hang; the row optimizers equal torch's on the rows they touch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from collabkit.distributed.rowwise import RowOptimizer, RowwiseConfig, fit_rowwise
from collabkit.distributed.shards import RowLayout, pinned_normal
from collabkit.errors import ConfigError, DataError
from collabkit.models.persist import load_model
from collabkit.testing.ranks import _planted_split

Suite = Callable[[int], dict[str, Any]]


def _tables(model: Any) -> list[torch.Tensor]:
    m = model.module_
    return [m.user_factors.weight, m.item_factors.weight, m.user_bias.weight,
            m.item_bias.weight]


def _held_out_rmse(model: Any) -> float:
    _, test = _planted_split({})
    raw_u = test.user_vocab.ids(test.users)
    raw_i = test.item_vocab.ids(test.items)
    pred = model.predict(raw_u, raw_i)["prediction"].to_numpy()
    return float(np.sqrt(np.mean((pred - test.ratings.astype(np.float64)) ** 2)))


@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("optimizer", ["adagrad", "sgd", "adam"])
def test_world_2_and_4_match_one_process(suite: Suite, optimizer: str, size: int) -> None:
    key = f"rowwise-{optimizer}"
    one, many = suite(1), suite(size)
    ref, got = load_model(one["dir"] / key), load_model(many["dir"] / key)
    first = one["ranks"][0][key]
    assert first["history"][-1]["train_loss"] < first["history"][0]["train_loss"]
    # 121 users and 83 items: uneven shards over 2 and 4 ranks, all of them held once
    assert sum(r[key]["n_local_users"] for r in many["ranks"]) == 121
    assert sum(r[key]["n_local_items"] for r in many["ranks"]) == 83
    assert all(abs(r[key]["rmse"] - first["rmse"]) < 1e-5 for r in many["ranks"])
    for a, b in zip(_tables(got), _tables(ref), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    # round trip: a plain process predicts what the ranks evaluated
    assert _held_out_rmse(got) == pytest.approx(many["ranks"][0][key]["rmse"], abs=1e-6)
    assert got.kind == "dot" and got.module_.y_range is None


def test_more_ranks_than_users_does_not_hang(suite: Suite) -> None:
    """3 users over 4 ranks: rank 3 owns no user row and no rating, yet steps every batch."""
    ranks = suite(4)["ranks"]
    assert [r["rowwise-tiny"]["n_local_users"] for r in ranks] == [1, 1, 1, 0]
    rmse = suite(1)["ranks"][0]["rowwise-tiny"]["rmse"]
    assert all(abs(r["rowwise-tiny"]["rmse"] - rmse) < 1e-5 for r in ranks)


def test_layout_covers_every_row_once_and_init_is_pinned() -> None:
    lay = RowLayout(10, 4)
    assert lay.counts() == [3, 3, 2, 2]
    assert lay.owner(np.arange(10)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]
    whole = pinned_normal(3, 1, np.arange(10), 5, 1.0)
    part = pinned_normal(3, 1, np.arange(6, 10), 5, 1.0)
    assert torch.equal(whole[6:], part)
    assert abs(float(whole.mean())) < 0.5 and 0.5 < float(whole.std()) < 1.5


@pytest.mark.parametrize("kind", ["sgd", "adagrad", "adam"])
def test_row_optimizer_equals_torch_on_touched_rows(kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    start = torch.randn(6, 3, generator=g)
    mine, theirs = start.clone(), torch.nn.Parameter(start.clone())
    opt: torch.optim.Optimizer = {"sgd": lambda: torch.optim.SGD([theirs], lr=0.1),
                                  "adagrad": lambda: torch.optim.Adagrad([theirs], lr=0.1),
                                  "adam": lambda: torch.optim.SparseAdam([theirs], lr=0.1)
                                  }[kind]()
    rows_opt = RowOptimizer(kind, 0.1, (6, 3))  # type: ignore[arg-type]
    for step in range(4):
        rows = torch.tensor([step % 5, (step + 2) % 5, 5])  # distinct, as the tier sends
        grad = torch.randn(3, 3, generator=g)
        rows_opt.step(mine, rows, grad)
        dense = torch.zeros(6, 3).index_add_(0, rows, grad)
        theirs.grad = dense.to_sparse() if kind == "adam" else dense
        opt.step()
    assert torch.allclose(mine, theirs.detach(), rtol=1e-6, atol=1e-7)


def test_ids_outside_the_shared_vocabulary_are_refused() -> None:
    """An id the shared vocabulary does not know (index -1) would silently wrap in the
    permutation; it is refused with the count and the remedy."""
    u, i, r = np.array([0, 1, -1]), np.array([0, 1, 1]), np.ones(3, np.float32)
    with pytest.raises(DataError, match="1 users are not indices of the shared vocabulary"):
        fit_rowwise(u, i, r, 2, 2, RowwiseConfig(epochs=1))
    with pytest.raises(ConfigError, match="optimizer must be"):
        fit_rowwise(u[:2], i[:2], r[:2], 2, 2, RowwiseConfig(optimizer="adamw"))  # type: ignore[arg-type]
