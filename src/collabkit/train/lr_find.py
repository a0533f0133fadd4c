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
from collabkit.runtime import resolve_device, threads
from collabkit.seeds import derive_seed, resolve_seed, torch_generator
from collabkit.train.loop import param_groups

__all__ = ["LRFindResult", "lr_find", "steepest", "valley"]


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

    def plot(self, path: str) -> str:
        """Write the curve with the suggestion marked to ``path`` (PNG); see plots."""
        from collabkit.plots import plot_lr_find

        return plot_lr_find(self.lrs, self.losses, self.suggestion, path)


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


def _estimator(model_or_params: Any) -> Any:
    from collabkit.models import registry
    from collabkit.models.base import Recommender

    if isinstance(model_or_params, Recommender):
        return type(model_or_params)(**model_or_params.get_params())
    if isinstance(model_or_params, dict):
        params = dict(model_or_params)
        kind = params.pop("kind", "dot")
        return registry.get(kind)(**params)
    raise ConfigError("lr_find needs a Recommender (fitted or not) or a dict of its parameters "
                      f"with a 'kind' key, got {type(model_or_params).__name__}")


def lr_find(model_or_params: Any, data: Interactions, *, start: float = 1e-6, end: float = 1.0,
            steps: int = 100, batch_size: int | None = None, stop_div: bool = True,
            seed: int | None = 0) -> LRFindResult:
    """Run the learning-rate finder on a fresh copy of a gradient-trained estimator.

    Parameters
    ----------
    model_or_params : Recommender or dict
        An estimator (its parameters are copied; it is not changed) or its parameters with a
        ``kind`` key, e.g. ``{"kind": "dot", "n_factors": 50}``.
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
        Seeds the initialisation and the batches.

    Returns
    -------
    LRFindResult

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
    est = _estimator(model_or_params)
    if not hasattr(est, "_build_module"):
        raise ConfigError(f"{type(est).__name__} is not trained by gradient descent; lr_find "
                          "applies to BiasedMF and MLPRecommender")
    if hasattr(est, "_validate"):
        est._validate()
    est._fit_common(data)
    est.seed_ = resolve_seed(seed if seed is not None else est.random_state)
    est.device_ = resolve_device(getattr(est, "device", "auto"))
    module: nn.Module = est._build_module(torch_generator(est.seed_)).to(est.device_)
    u = est.user_vocab_.index(data.user_vocab.ids(data.users))
    i = est.item_vocab_.index(data.item_vocab.ids(data.items))
    x = est._inputs(u, i)
    y = torch.as_tensor(data.ratings.astype(np.float32), device=est.device_)
    bs = int(batch_size or getattr(est, "batch_size", 64))
    # small kernels: a second thread mostly waits on a busy CPU
    with threads(1 if est.device_.type == "cpu" else None):
        lrs, raw, smooth = _run(module, x, y, bs, float(start), float(end), int(steps),
                                _wd(est), stop_div,
                                torch_generator(derive_seed(est.seed_, "shuffle"), est.device_))
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


def _wd(est: Any) -> float:
    """The estimator's weight decay; BiasedMF's ``wd="auto"`` starts at its first candidate."""
    wd = getattr(est, "wd", 0.0)
    return est._wd_value() if isinstance(wd, str) and hasattr(est, "_wd_value") else float(wd)
