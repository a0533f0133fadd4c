r"""The one-cycle learning-rate schedule (fastai's ``fit_one_cycle``), defined once.

Both training loops follow it: the packed BiasedMF loop computes it with
:func:`one_cycle_lr`; the autograd AdamW loop lets :func:`torch_one_cycle` build torch's
``OneCycleLR`` from the same :class:`OneCycle` settings (torch also cycles Adam's ``beta1``
between ``max_momentum`` and ``base_momentum``). Each loop keeps the constants it was tuned
with, so its numbers did not move when the two definitions became one:

* the packed loop: :data:`PACKED` — ``lr_max / 25`` → ``lr_max`` → ``lr_max / 1e4``;
* the autograd loop: :data:`AUTOGRAD` — ``lr_max / 25`` → ``lr_max`` → ``lr_max / 1e5``
  (torch's ``final_div_factor=4e3`` counts from the starting rate: ``25 * 4e3 = 1e5``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["OneCycle", "PACKED", "AUTOGRAD", "one_cycle_lr", "torch_one_cycle"]


@dataclass(frozen=True)
class OneCycle:
    """Shape of a one-cycle schedule.

    Attributes
    ----------
    pct_start : float
        Share of the steps spent warming up.
    div : float
        The first rate is ``lr_max / div``.
    final_div : float
        The last rate is ``lr_max / final_div`` (counted from ``lr_max``).
    """

    pct_start: float = 0.25
    div: float = 25.0
    final_div: float = 1e4


#: the packed BiasedMF loop's schedule
PACKED = OneCycle(pct_start=0.25, div=25.0, final_div=1e4)
#: the autograd AdamW loop's schedule (fastai's defaults)
AUTOGRAD = OneCycle(pct_start=0.25, div=25.0, final_div=25.0 * 4e3)


def one_cycle_lr(step: int, total: int, lr_max: float, *, pct_start: float = PACKED.pct_start,
                 div: float = PACKED.div, final_div: float = PACKED.final_div) -> float:
    r"""fastai's one-cycle learning rate at ``step`` (0-based) of ``total``.

    Cosine from ``lr_max / div`` up to ``lr_max`` over the first ``pct_start`` of the steps,
    then cosine down to ``lr_max / final_div``:

    .. math::

        \eta_t = \eta_{a} + (\eta_{b} - \eta_{a}) \frac{1 - \cos(\pi \tau)}{2}

    with :math:`\tau` the position inside the phase.
    """
    t = step / max(1, total - 1)
    if t < pct_start:
        lo, hi, tau = lr_max / div, lr_max, t / pct_start
    else:
        lo, hi, tau = lr_max, lr_max / final_div, (t - pct_start) / (1.0 - pct_start)
    return lo + (hi - lo) * (1.0 - math.cos(math.pi * tau)) / 2.0


def torch_one_cycle(opt: torch.optim.Optimizer, lr_max: float, total_steps: int,
                    cycle: OneCycle = AUTOGRAD, *, base_momentum: float = 0.85,
                    max_momentum: float = 0.95,
                    cycle_momentum: bool = True) -> torch.optim.lr_scheduler.OneCycleLR:
    """torch's ``OneCycleLR`` on ``opt`` following ``cycle`` (one step per batch).

    torch divides by zero for some tiny step counts (e.g. 4): at least 8 steps are
    scheduled; on such tiny data the last steps are simply never taken.
    ``cycle_momentum=False`` for optimizers without momentum (Adagrad, plain SGD).
    """
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr_max, total_steps=max(8, total_steps), pct_start=cycle.pct_start,
        div_factor=cycle.div, final_div_factor=cycle.final_div / cycle.div,
        base_momentum=base_momentum, max_momentum=max_momentum,
        cycle_momentum=cycle_momentum,
    )
