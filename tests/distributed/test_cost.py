"""The planner (issue 15): known-answer sizes at 1B ratings, the tier it picks, a refusal
that names the tier that would fit, and predicted bytes per step against what the replicate
tier's instrumented collectives counted."""

from __future__ import annotations

import math

import pytest

from collabkit.distributed import cost
from collabkit.distributed.group import spawn
from collabkit.errors import ConfigError
from collabkit.testing.ranks import replicate_fit

pytestmark = pytest.mark.timeout(120)

BIG = cost.Problem(10**9, 10**8, 10**7, 64, world=8, batch_size=65536)


def test_one_billion_ratings_known_answers() -> None:
    # tables: 1.1e8 rows x 65 floats x 4 B = 28.6 GB (26 GB users + 2.6 GB items)
    assert BIG.table_bytes == 110_000_000 * 65 * 4
    dense = cost.estimate("replicate", BIG)
    assert dense.payload_per_step == BIG.table_bytes
    assert dense.wire_per_step == 2 * BIG.table_bytes * 7 // 8  # ring all-reduce, ~50 GB
    sparse = cost.estimate("replicate-sparse", BIG)
    # every rank receives the others' rows: 7/8 of 1e9 ratings x 2 x (264 + 12) B per epoch
    assert sparse.wire_per_epoch == pytest.approx(1e9 * 7 / 8 * 552, rel=1e-3)
    row = cost.estimate("rowwise", BIG)
    # user-aligned: one item lookup per rating crosses ranks, 8 B id + 2 x 260 B rows, 7/8 of
    # them owned elsewhere: per rank 1e9 / 8 x 528 x 7/8 = 58 GB, 462 GB in all (~1 TB / 2)
    assert row.wire_per_epoch == pytest.approx(1e9 / 8 * 528 * 7 / 8, rel=1e-3)
    assert row.memory_per_rank == (4 * BIG.table_bytes + BIG.data_bytes) // 8


def test_picks_one_device_when_it_fits_and_rowwise_when_nothing_else_does() -> None:
    small = cost.Problem(100_000, 1000, 1700, 50)
    assert cost.choose(small, 8 * 10**9).tier == "one-device"
    assert cost.choose(BIG, 40 * 10**9).tier == "rowwise"


def test_over_budget_replicate_names_the_tier_that_fits() -> None:
    with pytest.raises(ConfigError, match=r"the replicate tier needs .* per rank at 8 rank\(s\), "
                       r"over --memory-per-rank 40 GB; the rowwise tier would fit"):
        cost.check_fits("replicate", BIG, 40 * 10**9)
    # 4 x 28.6 GB (weights, gradient, AdamW's two moments) + 20 GB of ratings = 134 GB
    with pytest.raises(ConfigError, match="rowwise tier would fit with 14 or more ranks"):
        cost.check_fits("replicate", BIG, 10 * 10**9)


@pytest.mark.parametrize("text, value", [("16G", 16 * 10**9), ("512MB", 512 * 10**6),
                                         ("2GiB", 2 * 2**30), ("2e9", 2 * 10**9)])
def test_memory_sizes(text: str, value: int) -> None:
    assert cost.parse_bytes(text) == value


def test_bad_memory_size_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--memory-per-rank must be a size like 16G"):
        cost.parse_bytes("lots")


def test_predicted_bytes_per_step_match_the_counted_all_reduce() -> None:
    cfg = {"batch_size": 256, "epochs": 2}
    out = spawn(replicate_fit, 2, cfg, timeout_s=60, start_method="fork")[0]
    steps = 2 * math.ceil(out["rows"] / 256)
    p = cost.Problem(out["rows"], 120, 80, 8, world=2, batch_size=256)
    predicted = cost.estimate("replicate", p).payload_per_step
    assert out["bytes"] / steps == pytest.approx(predicted, rel=0.10)


def test_predicted_sparse_bytes_per_step_match_the_counted_all_gather() -> None:
    # many users and items, small batches: rows rarely repeat within a batch
    cfg = {"batch_size": 64, "epochs": 1, "sparse": "sgd", "wd": 0.0, "lr": 0.1,
           "users": 2000, "items": 1500, "density": 0.004}
    out = spawn(replicate_fit, 2, cfg, timeout_s=60, start_method="fork")[0]
    steps = math.ceil(out["rows"] / 64)
    p = cost.Problem(out["rows"], 2000, 1500, 8, world=2, batch_size=64, optimizer="sgd")
    predicted = cost.estimate("replicate-sparse", p).payload_per_step
    assert out["bytes"] / steps == pytest.approx(predicted, rel=0.10)
