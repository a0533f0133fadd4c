"""Rank programs for the distributed tests (issue 15).

Spawned ranks import the function they run by its module path, and pytest's
``--import-mode=importlib`` leaves test modules unimportable in a child process, so the
small programs the tests spawn live here, in the installed package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from collabkit.data.interactions import Interactions
from collabkit.distributed.group import world


def sum_of_ranks(rank: int, size: int) -> dict[str, int]:
    """Each rank reports its place and the all-reduced sum of all ranks."""
    w = world()
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    return {"rank": w.rank, "size": w.size, "sum": int(t.item())}


# ------------------------------------------------------------------ sharded tiers (part 2)
def _planted_split(spec: dict[str, Any]) -> tuple[Interactions, Interactions]:
    """The same planted train/test split on every rank (test: every fifth row)."""
    from collabkit.testing.synthetic import planted_low_rank

    data = planted_low_rank(spec.get("n_users", 121), spec.get("n_items", 83), k=3,
                            density=spec.get("density", 0.25), seed=spec.get("seed", 0)).data
    rows = np.arange(len(data))
    return data.take(rows[rows % 5 != 0]), data.take(rows[rows % 5 == 0])


def _my_rows(data: Interactions, rank: int, size: int) -> Interactions:
    """Round-robin rows: a split that matches no shard, so the tier must move ratings."""
    return data.take(np.arange(rank, len(data), size))


def rowwise_program(rank: int, size: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Train the row-wise tier on this rank's rows of a planted set, evaluate it across
    ranks, and save rank 0's gathered model to ``spec["out"]``."""
    from collabkit.distributed.rowwise import (
        RowwiseConfig,
        evaluate_rowwise,
        fit_rowwise,
        to_model,
    )

    train, test = _planted_split(spec)
    mine, my_test = _my_rows(train, rank, size), _my_rows(test, rank, size)
    cfg = RowwiseConfig(**spec["config"])
    st = fit_rowwise(mine.users, mine.items, mine.ratings, len(train.user_vocab),
                     len(train.item_vocab), cfg)
    rmse = evaluate_rowwise(st, my_test.users, my_test.items, my_test.ratings,
                            train.rating_range)
    model = to_model(st, mine)
    if model is not None:
        model.save(spec["out"])
    return {"rmse": rmse, "history": st.history, "bytes_moved": st.bytes_moved,
            "n_local_users": len(st.user_table), "n_local_items": len(st.item_table)}


def als_program(rank: int, size: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Train kind ``spec["kind"]`` (``"als"`` or ``"ials"``) with the ALS tier on this rank's
    rows of a planted set; rank 0 saves the gathered model to ``spec["out"]``."""
    from collabkit.distributed import als
    from collabkit.distributed.tiers import TrainJob

    train, _ = _planted_split(spec)
    job = TrainJob(_my_rows(train, rank, size), spec["kind"], dict(spec["params"]))
    model = als.run(job, world())
    if model is not None:
        model.save(spec["out"])
    return {"rank": rank}


def sharded_suite(rank: int, size: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Every part-2 check's rank work in one spawn (spawning 4 ranks costs more than the
    training): the row-wise tier per optimizer, a world with more ranks than users, ALS and
    iALS, and reading this rank's part of the Parquet dataset at ``spec["parquet"]``."""
    from collabkit.distributed.data import load_rank_part

    root, out = spec["dir"], {}
    for opt in ("adagrad", "sgd", "adam"):
        out[f"rowwise-{opt}"] = rowwise_program(rank, size, {
            "out": f"{root}/rowwise-{opt}", "config": {**spec["rowwise"], "optimizer": opt}})
    out["rowwise-tiny"] = rowwise_program(rank, size, {
        "out": f"{root}/rowwise-tiny", "n_users": 3, "n_items": 6, "density": 0.5,
        "config": spec["rowwise"]})
    for kind in ("als", "ials"):
        als_program(rank, size, {"kind": kind, "params": spec[kind], "out": f"{root}/{kind}"})
    if spec.get("parquet"):
        data, part = load_rank_part(spec["parquet"])
        out["parquet"] = {"files": part.files, "parts": part.parts,
                          "rows": part.frame[["user", "item", "rating"]].values.tolist(),
                          "users": len(data.user_vocab), "items": len(data.item_vocab),
                          "rating_range": list(data.rating_range)}
        out["parquet"]["rowwise_rmse"] = _rowwise_on(data, spec["rowwise"])
    return out


def _rowwise_on(data: Interactions, config: dict[str, Any]) -> float:
    """Training RMSE of the row-wise tier fed this rank's Parquet part (parts follow a hash
    of the user id, not the row shards: the tier moves the ratings)."""
    from collabkit.distributed.rowwise import RowwiseConfig, evaluate_rowwise, fit_rowwise

    st = fit_rowwise(data.users, data.items, data.ratings, len(data.user_vocab),
                     len(data.item_vocab), RowwiseConfig(**config))
    return evaluate_rowwise(st, data.users, data.items, data.ratings, data.rating_range)
