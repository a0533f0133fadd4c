"""One short training function: AdamW + one-cycle on shuffled index batches."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from collabkit.errors import ConfigError
from collabkit.runtime import threads
from collabkit.train.parallel import active
from collabkit.train.runner import (
    EpochOutcome,
    EpochStats,
    TrainResult,
    check_not_diverged,
    remedy,
    run_epochs,
)
from collabkit.train.schedule import AUTOGRAD, torch_one_cycle

__all__ = ["EpochStats", "TrainResult", "check_not_diverged", "fit_one_cycle",
           "param_groups", "remedy", "make_optimizer", "OPTIMIZERS"]


def param_groups(model: nn.Module, wd: float, *, decay_biases: bool = True) -> list[dict]:
    """Split parameters into weight-decay groups by name.

    Bias tables (names containing ``bias``) are decayed only when ``decay_biases`` is true
    (fastai decays its bias embeddings; the chapter's results rely on it).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if ("bias" in name and not decay_biases) else decay).append(p)
    groups = [{"params": decay, "weight_decay": wd}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(name: str, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) on parameter ``groups``."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), eps=1e-5, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, foreach=True)
    raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


@torch.no_grad()
def _rmse(model: nn.Module, x: tuple[torch.Tensor, ...], y: torch.Tensor, bs: int) -> float:
    model.eval()
    se = torch.zeros((), dtype=torch.float64, device=y.device)
    for s in range(0, y.shape[0], bs):
        pred = model(*(t[s : s + bs] for t in x))
        se += ((pred - y[s : s + bs]).double() ** 2).sum()
    model.train()
    return math.sqrt(se.item() / max(1, y.shape[0]))


def fit_one_cycle(
    model: nn.Module,
    x: tuple[torch.Tensor, ...],
    y: torch.Tensor,
    *,
    epochs: int,
    lr_max: float,
    wd: float,
    batch_size: int,
    generator: torch.Generator,
    valid: tuple[tuple[torch.Tensor, ...], torch.Tensor] | None = None,
    decay_biases: bool = True,
    callback: Callable[[EpochStats], None] | None = None,
    num_threads: int | None = 1,
    optimizer: str = "adamw",
) -> TrainResult:
    """Train ``model`` on MSE with AdamW and fastai's one-cycle schedule.

    Each epoch shuffles a permutation of the rows on the device and slices it into batches,
    so there is no per-row Dataset. The learning rate rises from ``lr_max/25`` to ``lr_max``
    over the first quarter of the steps and anneals by cosine to ``lr_max/1e5``
    (:data:`collabkit.train.schedule.AUTOGRAD`); Adam's
    ``beta1`` moves the opposite way between 0.95 and 0.85 (fastai's ``fit_one_cycle``).

    Parameters
    ----------
    model : nn.Module
        Called as ``model(*x_batch)`` and returning predictions of shape ``(batch,)``.
    x : tuple of Tensor
        Model inputs, each with the rows on dimension 0 and already on the model's device.
    y : Tensor
        Targets, float32, shape ``(n,)``.
    epochs, lr_max, wd, batch_size
        The schedule. ``wd`` is AdamW's decoupled weight decay.
    generator : torch.Generator
        Source of the shuffles (on the same device as ``y``), for reproducible runs.
    valid : (x, y) or None
        Validation rows; their RMSE is computed after every epoch.
    callback : callable or None
        Called with an :class:`EpochStats` after every epoch (progress bars use it).
    num_threads : int or None, default 1
        torch intra-op CPU threads while training, restored afterwards; ``None`` keeps
        torch's setting. Minibatches of a few hundred rows gain nothing from a second thread,
        and on a busy machine every parallel kernel waits for a descheduled thread: the
        chapter's fit on MovieLens 100k u1 took 470 s with two threads and 13 s with one
        (see :func:`collabkit.runtime.threads`).
    optimizer : {"adamw", "sgd"}
        ``"adamw"``: AdamW with decoupled weight decay ``wd``. ``"sgd"``: plain SGD with
        momentum cycled 0.95 → 0.85 → 0.95 by the schedule and ``wd`` as an L2 penalty
        (torch's ``SGD(weight_decay=wd)``), as fastai's ``fit_one_cycle`` with ``opt_func=SGD``.

    Raises
    ------
    ModelFitError
        When the loss becomes NaN or infinite.
    """
    with threads(num_threads if y.device.type == "cpu" else None):
        return _fit_one_cycle(model, x, y, epochs=epochs, lr_max=lr_max, wd=wd,
                              batch_size=batch_size, generator=generator, valid=valid,
                              decay_biases=decay_biases, callback=callback,
                              optimizer=optimizer)


def _fit_one_cycle(model: nn.Module, x: tuple[torch.Tensor, ...], y: torch.Tensor, *,
                   epochs: int, lr_max: float, wd: float, batch_size: int,
                   generator: torch.Generator,
                   valid: tuple[tuple[torch.Tensor, ...], torch.Tensor] | None,
                   decay_biases: bool,
                   callback: Callable[[EpochStats], None] | None,
                   optimizer: str = "adamw") -> TrainResult:
    dp = active()
    if dp is not None:  # issue 15: train as one rank of a data-parallel job
        from collabkit.train.parallel_loop import fit_data_parallel

        return fit_data_parallel(
            dp, model, x, y, epochs=epochs, lr_max=lr_max, wd=wd, batch_size=batch_size,
            generator=generator, valid=valid, callback=callback,
            dense_optimizer=lambda: make_optimizer(
                optimizer, param_groups(model, wd, decay_biases=decay_biases), lr_max),
            rmse=_rmse)
    n = y.shape[0]
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    opt = make_optimizer(optimizer, param_groups(model, wd, decay_biases=decay_biases), lr_max)
    sched = torch_one_cycle(opt, lr_max, epochs * steps_per_epoch, AUTOGRAD)
    model.train()

    def epoch_fn(epoch: int) -> EpochOutcome:
        perm = torch.randperm(n, device=y.device, generator=generator)
        loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            pred = model(*(t[idx] for t in x))
            loss = nn.functional.mse_loss(pred, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach().double() * idx.shape[0]
        train_loss = loss_sum.item() / n  # one device sync per epoch
        if not math.isfinite(train_loss):
            return EpochOutcome(train_loss)
        vr = _rmse(model, valid[0], valid[1], 65536) if valid is not None else None
        return EpochOutcome(train_loss, vr, float(sched.get_last_lr()[0]))

    return run_epochs(epoch_fn, epochs, callback=callback,
                      remedy=remedy(lr_max, wd))
