"""The one epoch runner every iterative model trains with, and its one history row type.

A model hands :func:`run_epochs` a function that runs one epoch (or sweep) and returns what
it measured; the runner times it, refuses a non-finite training loss with a
:class:`~collabkit.errors.ModelFitError` that carries the model's remedy, records one
:class:`EpochStats` row, calls the callback, and times the whole loop. The packed BiasedMF
loop, the autograd one-cycle loop, SVD++, ALS and BayesianMF's Gibbs sweeps all run here, so
every model's ``history_`` has the same fields.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from collabkit.errors import ModelFitError

__all__ = ["EpochStats", "EpochOutcome", "TrainResult", "check_not_diverged", "remedy",
           "run_epochs"]


@dataclass(frozen=True)
class EpochStats:
    """What one epoch (or sweep) did.

    Attributes
    ----------
    epoch : int
        1-based number of the epoch or sweep.
    train_loss : float
        Mean training MSE (without penalties); ``sqrt(train_loss)`` is the training RMSE.
    valid_rmse : float or None
        RMSE on the validation rows, None without any.
    lr : float
        Learning rate at the end of the epoch (0.0 for closed-form and sampling sweeps).
    seconds : float
        Wall time of the epoch.
    noise_precision : float or None
        Sampled noise precision (BayesianMF's ``alpha``), None for other models.
    """

    epoch: int
    train_loss: float
    valid_rmse: float | None
    lr: float
    seconds: float
    noise_precision: float | None = None

    @property
    def train_rmse(self) -> float:
        return math.sqrt(self.train_loss) if self.train_loss >= 0 else math.nan

    @property
    def valid_mse(self) -> float | None:
        return None if self.valid_rmse is None else self.valid_rmse ** 2

    def row(self) -> dict[str, float | int | None]:
        """The epoch as a ``history_`` row: its fields plus ``train_rmse`` and ``valid_mse``,
        so MSE (the chapter's loss) and RMSE stand side by side (issue 12)."""
        return {**vars(self), "train_rmse": self.train_rmse, "valid_mse": self.valid_mse}


@dataclass
class TrainResult:
    """All epochs of a fit and the total wall time of the loop."""

    history: list[EpochStats] = field(default_factory=list)
    fit_seconds: float = 0.0


@dataclass(frozen=True)
class EpochOutcome:
    """What an epoch function returns to :func:`run_epochs`.

    ``record=False`` (a burn-in or thinned-out sweep) keeps the epoch out of the history and
    skips the callback; its loss is still checked.
    """

    train_loss: float
    valid_rmse: float | None = None
    lr: float = 0.0
    noise_precision: float | None = None
    record: bool = True


def run_epochs(epoch_fn: Callable[[int], EpochOutcome], epochs: int, *,
               remedy: str, callback: Callable[[EpochStats], None] | None = None,
               what: str = "epoch") -> TrainResult:
    """Run ``epoch_fn(0) .. epoch_fn(epochs - 1)`` and collect their :class:`EpochStats`.

    Parameters
    ----------
    epoch_fn : callable
        Runs one epoch given its 0-based number; returns an :class:`EpochOutcome`.
    epochs : int
    remedy : str
        What the user should change when the loss is not finite (names the model's own
        parameters, e.g. ``"Lower the learning rate (now 0.01) or raise wd (now 0.1)."``).
    callback : callable or None
        Called with each recorded :class:`EpochStats` (progress bars use it).
    what : str
        ``"epoch"`` or ``"sweep"``, for the error message.

    Raises
    ------
    ModelFitError
        When an epoch's training loss is NaN or infinite.
    """
    result = TrainResult()
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        out = epoch_fn(epoch)
        if not math.isfinite(out.train_loss):
            raise ModelFitError(f"training loss became {out.train_loss} in {what} "
                                f"{epoch + 1}; the model diverged. {remedy}")
        if not out.record:
            continue
        stats = EpochStats(epoch + 1, out.train_loss, out.valid_rmse, out.lr,
                           time.perf_counter() - t0, out.noise_precision)
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
