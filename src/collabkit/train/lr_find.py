r"""The learning-rate finder (Smith 2015, as fastai's ``lr_find``).

A throwaway copy of the estimator's module is trained for ``steps`` batches while the
learning rate grows exponentially from ``start`` to ``end``:
:math:`\eta_t = \eta_{start} (\eta_{end}/\eta_{start})^{t/(T-1)}`. The loss is smoothed by a
debiased exponential moving average (:math:`\beta = 0.98`) and the run stops early once it
exceeds four times its minimum. Two suggestions are read off the curve, as fastai does after
dropping the first tenth and the last five points:

* **steepest**: the learning rate where the smoothed loss falls fastest per unit of
  :math:`\log \eta`;
* **valley** (the default ``suggestion``): the longest decreasing run of the loss, from
  index :math:`a` to :math:`b`, and the point :math:`a + \lfloor (b-a)/3 \rfloor
  + \lfloor (b-a)/6 \rfloor` in it, about half-way down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError
from collabkit.runtime import threads
from collabkit.seeds import derive_seed, torch_generator
from collabkit.train.loop import param_groups

__all__ = ["GradientProblem", "LRFindResult", "lr_find", "steepest", "valley"]


@dataclass(frozen=True)
class LRFindResult:
    """The loss curve of :func:`lr_find` and the learning rates it suggests.

    Attributes
    ----------
    lrs : numpy.ndarray
        Learning rate of each step taken.
    losses : numpy.ndarray
        Smoothed training loss (MSE) after each step.
    raw_losses : numpy.ndarray
        Unsmoothed batch losses.
    suggestion : float
        The valley suggestion (what fastai ≥ 2.5 recommends).
    steepest : float
        The steepest-descent suggestion.
    """

    lrs: np.ndarray = field(repr=False)
    losses: np.ndarray = field(repr=False)
    raw_losses: np.ndarray = field(repr=False)
    suggestion: float
    steepest: float


def steepest(lrs: np.ndarray, losses: np.ndarray) -> float:
    """Learning rate at the most negative slope of ``losses`` against ``log(lrs)``."""
    if len(lrs) < 2:
        return float(lrs[0])
    slope = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slope))])


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's valley rule: half-way down the longest decreasing run of the loss."""
    n = len(losses)
    if n < 2:
        return float(lrs[0])
    length = np.ones(n, dtype=np.int64)  # longest decreasing subsequence ending at i
    best_end, best_start = 0, 0
    for i in range(1, n):
        prev = losses[:i] > losses[i]
        if prev.any():
            length[i] = int(length[:i][prev].max()) + 1
        if length[i] > length[best_end]:
            best_end, best_start = i, i - int(length[i])
    sections = (best_end - best_start) / 3
    idx = min(n - 1, max(0, best_start + int(sections) + int(sections / 2)))
    return float(lrs[idx])


@dataclass(frozen=True)
class GradientProblem:
    """What a gradient-trained model hands the learning-rate finder (its public hook
    ``gradient_problem(data, seed=...)``): a freshly initialised module and its inputs.

    Attributes
    ----------
    module : nn.Module
        A new module, on ``device``; training it changes no estimator.
    inputs : tuple of Tensor
        The module's inputs for every training row.
    targets : Tensor
        The ratings, float32.
    batch_size : int
        The estimator's batch size.
    wd : float
        Its weight decay (AdamW's).
    seed : int
        The resolved seed; the batches are shuffled with its ``"shuffle"`` stream.
    device : torch.device
    """

    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    targets: torch.Tensor
    batch_size: int
    wd: float
    seed: int
    device: torch.device


def lr_find(model: Any, data: Interactions, *, start: float = 1e-6, end: float = 1.0,
            steps: int = 100, batch_size: int | None = None, stop_div: bool = True,
            seed: int | None = 0) -> LRFindResult:
    """Run the learning-rate finder on a fresh copy of a gradient-trained estimator.

    Parameters
    ----------
    model : Recommender
        An estimator trained by gradient descent (fitted or not); it is not changed. It
        provides ``gradient_problem(data, seed=...)`` (:class:`GradientProblem`).
        :func:`collabkit.api.lr_find` also takes its parameters with a ``kind`` key.
    data : Interactions
        Training ratings.
    start, end : float
        First and last learning rate, ``0 < start < end``.
    steps : int
        Batches to train (at least 5).
    batch_size : int or None
        Defaults to the estimator's ``batch_size``.
    stop_div : bool
        Stop once the smoothed loss exceeds four times its minimum (or is not finite).
    seed : int or None
        Seeds the initialisation and the batches (None: the estimator's ``random_state``).

    Returns
    -------
    LRFindResult
        Plot it with :func:`collabkit.plots.plot_lr_find`.

    Raises
    ------
    ConfigError
        The estimator is not trained by gradient descent, or a setting is out of range.
    DataError
        ``data`` is not an Interactions table or is empty.
    """
    if not (0 < start < end and math.isfinite(end)):
        raise ConfigError(f"need 0 < start < end, got start={start!r}, end={end!r}")
    if int(steps) < 5:
        raise ConfigError(f"steps must be at least 5, got {steps}")
    if not isinstance(data, Interactions) or len(data) == 0:
        raise DataError("lr_find needs a non-empty Interactions table (collabkit.load_ratings)")
    hook = getattr(model, "gradient_problem", None)
    if hook is None:
        raise ConfigError(f"{type(model).__name__} is not trained by gradient descent; lr_find "
                          "applies to BiasedMF and MLPRecommender")
    problem: GradientProblem = hook(data, seed=seed)
    bs = int(batch_size or problem.batch_size)
    # small kernels: a second thread mostly waits on a busy CPU
    with threads(1 if problem.device.type == "cpu" else None):
        lrs, raw, smooth = _run(problem.module, problem.inputs, problem.targets, bs,
                                float(start), float(end), int(steps), float(problem.wd),
                                stop_div, torch_generator(derive_seed(problem.seed, "shuffle"),
                                                          problem.device))
    lo, hi = len(lrs) // 10, max(len(lrs) // 10 + 2, len(lrs) - 5)
    tl, ts = lrs[lo:hi], smooth[lo:hi]
    return LRFindResult(lrs, smooth, raw, valley(tl, ts), steepest(tl, ts))


def _run(module: nn.Module, x: tuple[torch.Tensor, ...], y: torch.Tensor, bs: int,
         start: float, end: float, steps: int, wd: float, stop_div: bool,
         gen: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    opt = torch.optim.AdamW(param_groups(module, wd), lr=start, betas=(0.9, 0.99), eps=1e-5)
    n = y.shape[0]
    perm = torch.randperm(n, device=y.device, generator=gen)
    pos, avg, best = 0, 0.0, math.inf
    lrs, raw, smooth = [], [], []
    module.train()
    for t in range(steps):
        lr = start * (end / start) ** (t / (steps - 1))
        for group in opt.param_groups:
            group["lr"] = lr
        if pos + bs > n:
            perm, pos = torch.randperm(n, device=y.device, generator=gen), 0
        idx = perm[pos: pos + bs]
        pos += bs
        loss = nn.functional.mse_loss(module(*(a[idx] for a in x)), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.item())  # a sync per step is fine for a few hundred steps
        avg = 0.98 * avg + 0.02 * value
        s = avg / (1 - 0.98 ** (t + 1))
        lrs.append(lr)
        raw.append(value)
        smooth.append(s)
        best = min(best, s)
        if stop_div and (not math.isfinite(s) or s > 4 * best):
            break
    module.eval()
    return np.asarray(lrs), np.asarray(raw), np.asarray(smooth)
