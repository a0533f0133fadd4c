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


def _planted(n_users: int, n_items: int, seed: int, density: float = 0.25
             ) -> tuple[Any, Any]:
    from collabkit.data.split import random_split
    from collabkit.testing.synthetic import planted_low_rank

    data = planted_low_rank(n_users, n_items, k=3, density=density, seed=seed).data
    sp = random_split(len(data), test_frac=0.2, seed=seed)
    return data.take(sp.train), data.take(sp.test)


def replicate_fit(rank: int, size: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Fit a small BiasedMF on planted data with the replicate tier; report its weights, test
    RMSE and the bytes DDP all-reduced (``cfg``: batch_size, epochs, optimizer, wd, lr,
    sparse, shuffle, users, items). Rank 0 of 1 runs without a process group."""
    from collabkit.distributed.replicate import ByteCounter, fit_replicated
    from collabkit.metrics.evaluate import evaluate
    from collabkit.models.biased_mf import BiasedMF

    train, test = _planted(cfg.get("users", 120), cfg.get("items", 80), cfg.get("seed", 0),
                           cfg.get("density", 0.25))
    est = BiasedMF(n_factors=cfg.get("k", 8), epochs=cfg.get("epochs", 3),
                   lr=cfg.get("lr", 1e-2), wd=cfg.get("wd", 0.05),
                   batch_size=cfg.get("batch_size", 256),
                   optimizer=cfg.get("optimizer", "adamw"), refit_users=False, valid_frac=0.0,
                   fallback=False, random_state=0, device="cpu")
    counter = ByteCounter()
    model = fit_replicated(est, train, sparse=cfg.get("sparse"),
                           shuffle=cfg.get("shuffle", "global"), counter=counter)
    m = model.module_  # type: ignore[attr-defined]
    weights = {k: v.detach().flatten().tolist() for k, v in m.state_dict().items()}
    return {"weights": weights, "rmse": float(evaluate(model, test).rmse),
            "bytes": counter.total, "calls": counter.calls, "rows": len(train)}


def replicate_round_trip(rank: int, size: int, folder: str) -> list[float] | None:
    """Fit with the replicate tier, evaluate across ranks (each rank predicts its part of
    the test rows, rank 0 gathers them), save once on rank 0; rank 0 returns the predictions."""
    from collabkit.distributed.group import world
    from collabkit.distributed.launch import save_on_rank0
    from collabkit.distributed.replicate import fit_replicated
    from collabkit.models.biased_mf import BiasedMF

    train, test = _planted(120, 80, 0)
    est = BiasedMF(n_factors=8, epochs=2, wd=0.05, optimizer="adamw", random_state=0,
                   device="cpu")
    model = fit_replicated(est, train, shuffle="global")
    users, items = test.user_vocab.ids(test.users), test.item_vocab.ids(test.items)
    mine = torch.tensor_split(torch.arange(len(test)), size)[rank].numpy()
    part = model.predict(users[mine], items[mine])["prediction"].tolist()
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, part)
    save_on_rank0(model, folder, world())
    return [p for chunk in parts for p in chunk] if rank == 0 else None


def guard_check(rank: int, size: int, drop_on: int) -> str:
    """Rank ``drop_on`` holds one row fewer; report what the fingerprint guard said."""
    from collabkit.distributed.group import world
    from collabkit.distributed.guard import check_same_data
    from collabkit.errors import DataError

    train, _ = _planted(60, 40, 0)
    if rank == drop_on:
        train = train.take(np.arange(len(train) - 1))
    try:
        check_same_data(train, world())
    except DataError as e:
        return str(e)
    return "ok"



def ml100k_u1(rank: int, size: int, shuffle: str, data_dir: str) -> float:
    """Test RMSE on ml-100k u1 of BiasedMF (AdamW, refit passes) trained by ``size`` ranks
    with ``shuffle`` ("per-rank": ordinary data parallelism, each rank its own stream)."""
    from collabkit.api import load_split
    from collabkit.distributed.replicate import fit_replicated
    from collabkit.metrics.evaluate import evaluate
    from collabkit.models.biased_mf import BiasedMF

    train, test = load_split("ml-100k", "u1", data_dir=data_dir, download=False,
                             progress=False)
    est = BiasedMF(optimizer="adamw", wd=0.1, batch_size=1024, epochs=5, random_state=0,
                   device="cpu")
    return float(evaluate(fit_replicated(est, train, shuffle=shuffle), test).rmse)

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
