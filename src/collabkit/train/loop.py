"""One short training function: AdamW + one-cycle on shuffled index batches."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from collabkit.errors import ModelFitError
from collabkit.runtime import threads

__all__ = ["EpochStats", "TrainResult", "check_not_diverged", "fit_one_cycle",
           "param_groups", "remedy"]


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did: mean training loss (MSE), validation RMSE, learning rate, time."""

    epoch: int
    train_loss: float
    valid_rmse: float | None
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """All epochs of a fit and the total wall time of the loop."""

    history: list[EpochStats] = field(default_factory=list)
    fit_seconds: float = 0.0


def param_groups(model: nn.Module, wd: float, *, decay_biases: bool = True) -> list[dict]:
    """Split parameters into weight-decay groups by name.

    Bias tables (names containing ``bias``) are decayed only when ``decay_biases`` is true
    (fastai decays its bias embeddings; the chapter's results rely on it).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if ("bias" in name and not decay_biases) else decay).append(p)
    groups = [{"params": decay, "weight_decay": wd}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


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
) -> TrainResult:
    """Train ``model`` on MSE with AdamW and fastai's one-cycle schedule.

    Each epoch shuffles a permutation of the rows on the device and slices it into batches,
    so there is no per-row Dataset. The learning rate rises from ``lr_max/25`` to ``lr_max``
    over the first quarter of the steps and anneals by cosine to ``lr_max/1e5``; Adam's
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

    Raises
    ------
    ModelFitError
        When the loss becomes NaN or infinite.
    """
    with threads(num_threads if y.device.type == "cpu" else None):
        return _fit_one_cycle(model, x, y, epochs=epochs, lr_max=lr_max, wd=wd,
                              batch_size=batch_size, generator=generator, valid=valid,
                              decay_biases=decay_biases, callback=callback)


def _fit_one_cycle(model: nn.Module, x: tuple[torch.Tensor, ...], y: torch.Tensor, *,
                   epochs: int, lr_max: float, wd: float, batch_size: int,
                   generator: torch.Generator,
                   valid: tuple[tuple[torch.Tensor, ...], torch.Tensor] | None,
                   decay_biases: bool,
                   callback: Callable[[EpochStats], None] | None) -> TrainResult:
    n = y.shape[0]
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    opt = torch.optim.AdamW(
        param_groups(model, wd, decay_biases=decay_biases), lr=lr_max, betas=(0.9, 0.99),
        eps=1e-5, foreach=True,
    )
    # torch's OneCycleLR divides by zero for some tiny step counts (e.g. 4): schedule at least
    # 8 steps; on such tiny data the last steps are simply never taken.
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr_max, total_steps=max(8, epochs * steps_per_epoch), pct_start=0.25,
        div_factor=25.0, final_div_factor=4e3, base_momentum=0.85, max_momentum=0.95,
    )
    result = TrainResult()
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
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
            raise ModelFitError(
                f"training loss became {train_loss} in epoch {epoch + 1}; the model diverged. "
                + remedy(lr_max, wd)
            )
        vr = _rmse(model, valid[0], valid[1], 65536) if valid is not None else None
        stats = EpochStats(epoch + 1, train_loss, vr, sched.get_last_lr()[0],
                           time.perf_counter() - t0)
        result.history.append(stats)
        if callback is not None:
            callback(stats)
    result.fit_seconds = time.perf_counter() - start
    return result


def check_not_diverged(train_loss: float, epoch: int, ratings: np.ndarray, remedy: str,
                       start_loss: float | None = None) -> None:
    """Raise :class:`ModelFitError` when the training loss says the fit diverged.

    A learning rate orders of magnitude too large does not always make the loss NaN: with a
    sigmoid ``y_range`` the predictions saturate at the ends of the range and the loss stays
    finite (about 11 on MovieLens with ``lr=1e6``, where the untrained model's is 1.3) while
    the factors reach 1e6. The limit is the largest of four times the ratings' variance (the
    global mean's loss), twice ``start_loss`` (the untrained model's loss; without it, the
    squared half-range of the ratings) and 1: a fit that is merely slow or poor stays below it.
    ``remedy`` ends the message.
    """
    if len(ratings) == 0:
        return
    r = np.asarray(ratings, dtype=np.float64)
    start = 2.0 * start_loss if start_loss is not None else (float(r.max() - r.min()) / 2) ** 2
    limit = max(4.0 * float(r.var()), start, 1.0)
    if math.isfinite(train_loss) and train_loss <= limit:
        return
    untrained = "" if start_loss is None else f"the untrained model's ({start_loss:.4g}) and "
    raise ModelFitError(
        f"training diverged: the training loss is {train_loss:.4g} after epoch {epoch}, far "
        f"above {untrained}the mean rating's ({float(r.var()):.4g}). {remedy}"
    )


def remedy(lr: float, wd: float | None) -> str:
    """The advice of a divergence error: lower ``lr`` (or raise ``wd``), with their values."""
    return f"Lower the learning rate (lr={lr:g})" + (
        "." if wd is None else f" or raise the weight decay (wd={wd:g}).")
