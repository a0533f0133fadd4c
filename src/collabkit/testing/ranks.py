"""Rank programs for the distributed tests (issue 15).

Spawned ranks import the function they run by its module path, and pytest's
``--import-mode=importlib`` leaves test modules unimportable in a child process, so the
small programs the tests spawn live here, in the installed package.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from collabkit.distributed.group import world


def sum_of_ranks(rank: int, size: int) -> dict[str, int]:
    """Each rank reports its place and the all-reduced sum of all ranks."""
    w = world()
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    return {"rank": w.rank, "size": w.size, "sum": int(t.item())}


def _planted(n_users: int, n_items: int, seed: int) -> tuple[Any, Any]:
    from collabkit.data.split import random_split
    from collabkit.testing.synthetic import planted_low_rank

    data = planted_low_rank(n_users, n_items, k=3, density=0.25, seed=seed).data
    sp = random_split(len(data), test_frac=0.2, seed=seed)
    return data.take(sp.train), data.take(sp.test)


def replicate_fit(rank: int, size: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Fit a small BiasedMF on planted data with the replicate tier; report its weights, test
    RMSE and the bytes DDP all-reduced (``cfg``: batch_size, epochs, optimizer, wd, lr,
    sparse, shuffle, users, items). Rank 0 of 1 runs without a process group."""
    from collabkit.distributed.replicate import ByteCounter, fit_replicated
    from collabkit.metrics.evaluate import evaluate
    from collabkit.models.biased_mf import BiasedMF

    train, test = _planted(cfg.get("users", 120), cfg.get("items", 80), cfg.get("seed", 0))
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
