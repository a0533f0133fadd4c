"""The one-cycle loop as one rank of a data-parallel job (issue 15).

:func:`~collabkit.train.loop.fit_one_cycle` hands its arguments here while a
:class:`~collabkit.train.parallel.DataParallel` plan is active. The maths is the one-process
loop's: same optimizer, same schedule, same number of steps; only the rows each rank
computes and the weight of its loss differ (see :mod:`collabkit.train.parallel`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from collabkit.errors import ConfigError
from collabkit.train.parallel import DataParallel, per_rank_rows, per_rank_step_rows
from collabkit.train.runner import EpochOutcome, EpochStats, TrainResult, remedy, run_epochs
from collabkit.train.schedule import AUTOGRAD, torch_one_cycle

__all__ = ["fit_data_parallel", "SPARSE_OPTIMIZERS"]

#: optimizers that take sparse embedding gradients (AdamW does not)
SPARSE_OPTIMIZERS = ("sgd", "adagrad")


def _optimizer(dp: DataParallel, model: nn.Module,
               dense: Callable[[], torch.optim.Optimizer], wd: float,
               lr: float) -> tuple[torch.optim.Optimizer, bool]:
    """The optimizer and whether the schedule cycles its momentum."""
    if dp.sparse is None:
        return dense(), True
    if dp.sparse not in SPARSE_OPTIMIZERS:
        raise ConfigError(f"sparse gradients need one of {', '.join(SPARSE_OPTIMIZERS)}, got "
                          f"{dp.sparse!r} (AdamW takes dense gradients only)")
    if wd != 0:
        raise ConfigError(f"sparse gradients take no weight decay: pass wd=0 (got wd={wd:g}), "
                          "or train with dense gradients (AdamW)")
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            m.sparse = True
    params = [p for p in model.parameters() if p.requires_grad]
    if dp.sparse == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0), False
    return torch.optim.Adagrad(params, lr=lr), False


def fit_data_parallel(dp: DataParallel, model: nn.Module, x: tuple[torch.Tensor, ...],
                      y: torch.Tensor, *, epochs: int, lr_max: float, wd: float,
                      batch_size: int, generator: torch.Generator,
                      valid: tuple[tuple[torch.Tensor, ...], torch.Tensor] | None,
                      callback: Callable[[EpochStats], None] | None,
                      dense_optimizer: Callable[[], torch.optim.Optimizer],
                      rmse: Callable[..., float]) -> TrainResult:
    """Train ``model`` (every rank holds all ``n`` rows of ``x``/``y``) through ``dp``.

    ``dense_optimizer()`` builds the one-process loop's optimizer (dense gradients) and
    ``rmse(model, x, y, batch)`` its validation RMSE: the loop passes its own.
    """
    n, dev, size = y.shape[0], y.device, dp.size
    opt, cycle_momentum = _optimizer(dp, model, dense_optimizer, wd, lr_max)
    step_model = dp.wrap(model)
    per_rank = dp.shuffle == "per-rank"
    if per_rank:
        own = per_rank_rows(n, dp.rank, size).to(dev)
        local_batch = max(1, batch_size // size)
        steps = max(1, math.ceil(math.ceil(n / size) / local_batch))
        gen = torch.Generator(device=dev).manual_seed(
            (generator.initial_seed() + 7919 * (dp.rank + 1)) % 2**63)
    else:
        steps = max(1, math.ceil(n / batch_size))
    sched = torch_one_cycle(opt, lr_max, epochs * steps, AUTOGRAD,
                            cycle_momentum=cycle_momentum)
    model.train()
    step_no = 0

    def batches() -> list[tuple[torch.Tensor, int]]:
        """(this rank's rows, rows of the whole step) for every step of one epoch."""
        if per_rank:
            mine = own[torch.randperm(len(own), device=dev, generator=gen)]
            return [(mine[s * local_batch : (s + 1) * local_batch],
                     per_rank_step_rows(n, size, local_batch, s)) for s in range(steps)]
        perm = torch.randperm(n, device=dev, generator=generator)
        return [(dp.local(perm[s : s + batch_size]), min(batch_size, n - s))
                for s in range(0, n, batch_size)]

    def epoch_fn(epoch: int) -> EpochOutcome:
        nonlocal step_no
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        for loc, rows in batches():
            if dp.on_step is not None:
                dp.on_step(step_no)
            pred = step_model(*(t[loc] for t in x))
            se = ((pred - y[loc]) ** 2).sum()
            loss = se * (size / max(1, rows))  # DDP's mean over ranks -> mean over the step
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if dp.after_backward is not None:
                dp.after_backward(model)
            opt.step()
            sched.step()
            step_no += 1
            loss_sum += se.detach().double()
        dp.reduce_sum(loss_sum)
        train_loss = loss_sum.item() / max(1, n)
        if not math.isfinite(train_loss):
            return EpochOutcome(train_loss)
        vr = rmse(model, valid[0], valid[1], 65536) if valid is not None else None
        return EpochOutcome(train_loss, vr, float(sched.get_last_lr()[0]))

    return run_epochs(epoch_fn, epochs, callback=callback, remedy=remedy(lr_max, wd))
