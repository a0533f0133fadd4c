"""``collabkit train`` across processes (issue 15): the flags, the launch, and the rank side.

``--nproc N`` starts N ranks on this machine (:func:`collabkit.distributed.launch.launch_local`);
under ``torchrun`` (or in those ranks) the command runs as one rank: it joins the process
group, lets the planner pick the tier (or checks the one given against
``--memory-per-rank``), refuses data that differs between ranks, trains through the tier's
entry point and saves once, on rank 0. Only rank 0 prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from collabkit.errors import ConfigError

__all__ = ["distributed_options", "Ranks"]


def distributed_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--nproc, --tier, --sparse-grad, --memory-per-rank."""
    opts = [
        click.option("--nproc", type=int, default=None, metavar="N",
                     help="Train as N processes on this machine (torch.distributed; the same "
                          "as torchrun --standalone --nproc-per-node N -m collabkit train ...)."),
        click.option("--tier", default="auto", show_default=True,
                     help="Distributed tier: auto (the planner picks), replicate, or another "
                          "registered tier (see README 'Scaling out')."),
        click.option("--sparse-grad", type=click.Choice(["sgd", "adagrad"]), default=None,
                     help="Replicate tier: sparse embedding gradients with this optimizer "
                          "(needs --wd 0); default dense gradients with AdamW."),
        click.option("--memory-per-rank", default=None, metavar="SIZE",
                     help="Memory budget per rank for the planner, e.g. 16G (default: this "
                          "machine's memory shared by its ranks, or the GPU's)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


class Ranks:
    """This process's part in a distributed ``train``: its world, tier and options."""

    def __init__(self, tier: str, sparse: str | None, memory: str | None) -> None:
        from collabkit.distributed.group import start

        self.world = start(timeout_s=1800.0)
        if not self.world.is_main:  # rank 0 speaks for the job
            import warnings

            warnings.filterwarnings("ignore")
        self.tier_flag, self.sparse, self.memory = tier, sparse, memory
        self.tier = ""
        self.plan: dict[str, Any] = {}

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    def prepare(self, kind: str, params: dict[str, Any], given: dict[str, Any],
                train_data: Any) -> dict[str, Any]:
        """Check the data across ranks, choose the tier, adjust ``params`` (BiasedMF trains
        with ``optimizer='adamw'`` across ranks unless told otherwise)."""
        import numpy as np

        from collabkit.cli.options import model_params
        from collabkit.distributed import cost, guard, tiers
        from collabkit.distributed.rowwise_cost import distinct_items_per_step
        from collabkit.models import registry

        guard.check_same_data(train_data, self.world)
        est = registry.get(kind)(**params)
        if "optimizer" in model_params(est) and "optimizer" not in given:
            params = {**params, "optimizer": "adamw"}
        own = registry.get(kind)(**params).get_params()
        k = int(own.get("n_factors") or 0) or 50
        problem = cost.Problem(len(train_data), len(train_data.user_vocab),
                               len(train_data.item_vocab), k, world=self.world.size,
                               batch_size=int(own.get("batch_size") or 1024),
                               optimizer="sgd" if self.sparse == "sgd" else
                               ("adagrad" if self.sparse else str(own.get("optimizer", "adamw"))),
                               distinct_items_per_step=distinct_items_per_step(
                                   np.bincount(train_data.items,
                                               minlength=len(train_data.item_vocab)),
                                   int(own.get("batch_size") or 1024), self.world.size))
        fits: cost.Estimate | None
        budget = (cost.parse_bytes(self.memory) if self.memory else
                  cost.default_memory_per_rank(int(_local_world())))
        if self.tier_flag == "auto":  # the first that fits, else refuse naming one that does
            first = "replicate-sparse" if self.sparse else "replicate"
            options = [(first, "replicate")]
            if "rowwise" in tiers.names() and kind in tiers.get("rowwise").kinds:
                options.append(("rowwise", "rowwise"))
            fitting = [(p, t) for p, t in options
                       if cost.estimate(p, problem).memory_per_rank <= budget]
            planned, self.tier = fitting[0] if fitting else options[0]
            fits = cost.check_fits(planned, problem, budget)
        else:
            self.tier = tiers.get(self.tier_flag).name
            planned = ("replicate-sparse" if self.tier == "replicate" and self.sparse
                       else self.tier)
            fits = cost.check_fits(planned, problem, budget) if planned in cost.TIERS else None
        if kind not in tiers.get(self.tier).kinds:
            raise ConfigError(f"the {self.tier} tier trains model kinds "
                              f"{', '.join(tiers.get(self.tier).kinds)}, not --model {kind}")
        if self.tier == "rowwise":  # the tier's Adagrad scale, not AdamW's (ml-100k u1: 0.926)
            params = {"lr": 0.1, "wd": 0.1, **params}
        self.plan = {"tier": self.tier, "world": self.world.size, "planned": planned,
                     "memory_per_rank_budget": budget,
                     "estimate": None if fits is None else fits.to_dict()}
        return params

    def fit(self, data: Any, est: Any) -> Any:
        """Fit ``est``'s kind and parameters on ``data`` through the tier's entry point."""
        from collabkit.distributed.tiers import TrainJob, entry

        options = {"sparse": self.sparse} if self.sparse else {}
        job = TrainJob(data, est.kind, est.get_params(), options)
        return entry(self.tier)(job, self.world)

    def save(self, model: Any, out_dir: str) -> str:
        from collabkit.distributed.launch import save_on_rank0

        return save_on_rank0(model, out_dir, self.world, arg="--out")

    def close(self, failed: bool = False) -> None:
        """Leave the group: in order after success; at once after an error on this rank
        (a barrier would wait for ranks still training; the launcher stops them)."""
        if failed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            return
        from collabkit.distributed.group import shutdown

        shutdown()


def _local_world() -> int:
    import os

    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def launch_or_join(ctx: click.Context, nproc: int | None, how: str, tier: str,
                   sparse: str | None, memory: str | None) -> Ranks | None | bool:
    """``True`` when this process launched the ranks itself (and they finished); a
    :class:`Ranks` inside a job; ``None`` for an ordinary one-process run."""
    from collabkit.distributed.launch import in_job, launch_local, strip_flag

    if nproc is not None and nproc < 1:
        raise ConfigError(f"--nproc must be 1 or more, got {nproc}")
    distributed = in_job() or (nproc or 1) > 1
    if distributed and how == "kfold":
        raise ConfigError("--split kfold trains in one process; drop --nproc (or torchrun) or "
                          "use another --split")
    if not distributed:
        if tier not in ("auto", "replicate") or sparse:
            raise ConfigError("--tier and --sparse-grad need several processes: add --nproc N "
                              "or launch with torchrun")
        return None
    if in_job():
        return Ranks(tier, sparse, memory)
    argv = (ctx.find_root().obj or {}).get("argv")
    if argv is None:
        raise ConfigError("--nproc needs the command line it was given (call "
                          "collabkit.cli.main.main(argv))")
    launch_local(int(nproc or 1), strip_flag(list(argv), "--nproc"))
    return True
