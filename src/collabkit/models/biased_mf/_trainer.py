"""The packed BiasedMF trainer: :func:`fit_biased_mf`, its kernel choice and its epoch.

The math and the timings are in :mod:`collabkit.models.biased_mf._packed`; the epoch runs on
:func:`collabkit.train.runner.run_epochs` with :data:`collabkit.train.schedule.PACKED`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from collabkit.errors import ConfigError, ModelFitError
from collabkit.models.biased_mf._module import DotProductBias
from collabkit.models.biased_mf._packed import (
    Kernel,
    mf_batch_grad,
    pack_tables,
    packed_predict,
    row_penalty_weights,
    unpack_tables,
)
from collabkit.runtime import threads
from collabkit.train.optim import PackedAdam
from collabkit.train.runner import EpochOutcome, EpochStats, TrainResult, remedy, run_epochs
from collabkit.train.schedule import PACKED, OneCycle, one_cycle_lr

__all__ = ["fit_biased_mf", "resolve_kernel"]


@torch.no_grad()
def fit_biased_mf(
    module: DotProductBias,
    users: torch.Tensor,
    items: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr_max: float,
    wd: float,
    batch_size: int,
    generator: torch.Generator,
    valid: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    reg_exponent: float = 0.5,
    betas: tuple[float, float] = (0.9, 0.99),
    eps: float = 1e-8,
    pct_start: float = 0.25,
    num_threads: int | None = 1,
    callback: Callable[[EpochStats], None] | None = None,
    kernel: Kernel = "auto",
) -> TrainResult:
    r"""Train a :class:`DotProductBias` in place with the packed hand-written gradient.

    Each epoch slices batches from a fresh shuffled permutation; each batch computes its
    gradient with :func:`mf_batch_grad` and takes one Adam step whose learning rate follows
    :func:`~collabkit.train.schedule.one_cycle_lr` (``lr_max / 25`` → ``lr_max`` →
    ``lr_max / 1e4``).

    Parameters
    ----------
    module : DotProductBias
        Initialised module; its tables are overwritten with the trained ones.
    users, items : Tensor (N,)
        Dense indices of the training rows (int32 or int64), on the module's device.
    y : Tensor (N,)
        Ratings, float32.
    epochs, lr_max, batch_size
        The schedule.
    wd : float
        :math:`\lambda`, the L2 penalty per occurrence (see the module docstring).
    generator : torch.Generator
        Source of the shuffles, on the same device as ``y``.
    valid : (users, items, y) or None
        Validation rows; their RMSE is computed after every epoch.
    reg_exponent : float
        :math:`\alpha` of the penalty weights :math:`c_r`.
    betas, eps
        Adam's.
    pct_start : float
        Share of the steps spent warming up.
    num_threads : int or None
        torch intra-op threads while training (:func:`collabkit.runtime.threads`); ``None`` keeps
        torch's setting. The numba kernel always runs on one thread (the two-thread variants
        measured no faster on the project's 2-core machine, see
        :mod:`~collabkit.models.biased_mf._numba`), so with it the setting only reaches the Adam
        step: 2
        measured 0.096 s per 1M-rating epoch against 0.100 s for 1 on a quiet machine, and
        0.30 s under load.
    callback : callable or None
        Called with an :class:`~collabkit.train.loop.EpochStats` after every epoch.
    kernel : {"auto", "numba", "torch"}
        The batch gradient: ``"numba"`` the fused CPU kernel
        :func:`collabkit.models.biased_mf._numba.batch_grad`, ``"torch"`` :func:`mf_batch_grad`;
        ``"auto"`` is numba on CPU when it imports, torch elsewhere (see
        :func:`resolve_kernel`). Both compute the same gradient up to float32 rounding.

    Returns
    -------
    TrainResult

    Raises
    ------
    ModelFitError
        When the loss or the tables become NaN or infinite.
    ConfigError
        For an unknown ``kernel``, or ``kernel="numba"`` off the CPU or without numba.
    """
    use_numba = resolve_kernel(kernel, y.device) == "numba"
    with threads(num_threads if y.device.type == "cpu" else None):
        return _fit_packed(module, users, items, y, epochs=epochs, lr_max=lr_max, wd=wd,
                           batch_size=batch_size, generator=generator, valid=valid,
                           reg_exponent=reg_exponent, betas=betas, eps=eps,
                           pct_start=pct_start, callback=callback, use_numba=use_numba)


_warned_fallback = False


def _warn_fallback(why: str) -> None:
    """One warning per process that the slower torch kernel is used instead of numba's."""
    global _warned_fallback
    if not _warned_fallback:
        _warned_fallback = True
        warnings.warn(f"collabkit: {why}; training BiasedMF with the torch kernel (slower)",
                      RuntimeWarning, stacklevel=3)


def resolve_kernel(kernel: str, device: torch.device | str) -> str:
    """``"numba"`` or ``"torch"``: the batch-gradient kernel that ``kernel`` means on ``device``.

    ``"auto"`` is numba on CPU when :mod:`numba` imports (else torch, with one warning per
    process), torch on other devices. ``"numba"`` off the CPU or without numba raises
    :class:`~collabkit.errors.ConfigError`.
    """
    from collabkit.models.biased_mf import _numba

    if kernel not in ("auto", "numba", "torch"):
        raise ConfigError(f"kernel must be 'auto', 'numba' or 'torch', got {kernel!r}")
    on_cpu = torch.device(device).type == "cpu"
    if kernel == "torch" or (kernel == "auto" and not on_cpu):
        return "torch"
    if not on_cpu:
        raise ConfigError(f"kernel='numba' runs on the CPU only, not on {device}")
    if _numba.kernel() is None:
        if kernel == "numba":
            raise ConfigError("kernel='numba' needs the numba package (pip install numba)")
        _warn_fallback("numba is not importable")
        return "torch"
    return "numba"


class _NumbaGrad:
    """:func:`collabkit.models.biased_mf._numba.batch_grad` bound to one fit's arrays.

    CPU tensors and their ``.numpy()`` views share memory, so the kernel writes the ``G`` that
    the Adam step reads and reads the ``W`` it updates.
    """

    def __init__(self, W: torch.Tensor, G: torch.Tensor, pairs: torch.Tensor, y: torch.Tensor,
                 coef: torch.Tensor, y_range: tuple[float, float] | None, mu: float,
                 batch_size: int) -> None:
        from collabkit.models.biased_mf import _numba

        self.fn = _numba.kernel()
        self.W, self.G, self.pairs = W.numpy(), G.numpy(), pairs.numpy()
        self.y = np.ascontiguousarray(y.numpy(), dtype=np.float32)
        self.coef = np.ascontiguousarray(coef.numpy(), dtype=np.float32)
        lo, hi = y_range if y_range is not None else (0.0, 1.0)
        self.args = (np.float32(lo), np.float32(hi - lo), y_range is not None, np.float32(mu))
        self.rows = np.empty((batch_size, 2), dtype=self.pairs.dtype)
        self.yb = np.empty(batch_size, dtype=np.float32)

    def __call__(self, idx: np.ndarray) -> float:
        """Write the gradient of batch ``pairs[idx]`` into ``G``; return its squared error."""
        return self.fn(self.W, self.G, self.pairs, self.y, idx, self.coef, *self.args,
                       self.rows, self.yb)


def _fit_packed(module: DotProductBias, users: torch.Tensor, items: torch.Tensor,
                y: torch.Tensor, *, epochs: int, lr_max: float, wd: float, batch_size: int,
                generator: torch.Generator,
                valid: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
                reg_exponent: float, betas: tuple[float, float], eps: float, pct_start: float,
                callback: Callable[[EpochStats], None] | None,
                use_numba: bool = False) -> TrainResult:
    start = time.perf_counter()
    epoch = _PackedEpoch(module, users, items, y, lr_max=lr_max, wd=wd, batch_size=batch_size,
                         generator=generator, valid=valid, reg_exponent=reg_exponent,
                         betas=betas, eps=eps, total=epochs * max(1, math.ceil(
                             y.shape[0] / batch_size)),
                         cycle=OneCycle(pct_start, PACKED.div, PACKED.final_div),
                         use_numba=use_numba)
    result = run_epochs(epoch, epochs, callback=callback,
                        remedy=remedy(lr_max, wd))
    if not bool(torch.isfinite(epoch.W).all()):
        raise ModelFitError("the trained factors hold NaN or infinite values; the model "
                            f"diverged. {remedy(lr_max, wd)}")
    unpack_tables(epoch.W, module)
    result.fit_seconds = time.perf_counter() - start
    return result


class _PackedEpoch:
    """One epoch of the packed trainer: shuffled batches, batch gradient, one Adam step each.

    Set up once per fit (packed table, penalty weights, kernel); calling it runs epoch
    ``epoch`` and returns its :class:`~collabkit.train.runner.EpochOutcome`.
    """

    def __init__(self, module: DotProductBias, users: torch.Tensor, items: torch.Tensor,
                 y: torch.Tensor, *, lr_max: float, wd: float, batch_size: int,
                 generator: torch.Generator,
                 valid: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
                 reg_exponent: float, betas: tuple[float, float], eps: float, total: int,
                 cycle: OneCycle, use_numba: bool) -> None:
        self.y, self.dev, self.valid = y, y.device, valid
        self.n_users = n_users = module.user_factors.num_embeddings
        n_items = module.item_factors.num_embeddings
        self.idx_dtype = torch.int32 if n_users + n_items < 2**31 else torch.int64
        self.pairs = torch.stack([users.to(self.idx_dtype),
                                  items.to(self.idx_dtype) + n_users], 1)
        self.coef = row_penalty_weights(self.pairs, n_users, n_items,
                                        reg_exponent).mul_(float(wd))
        self.vpairs = None
        if valid is not None:
            self.vpairs = torch.stack([valid[0].to(self.idx_dtype),
                                       valid[1].to(self.idx_dtype) + n_users], 1)
        self.y_range, self.mu = module.y_range, float(module.global_bias)
        self.W = pack_tables(module)
        self.G = torch.zeros_like(self.W)
        self.n, self.batch_size = y.shape[0], batch_size
        self.work: torch.Tensor | None = None
        self.numba_grad: _NumbaGrad | None = None
        if use_numba:
            self.numba_grad = _NumbaGrad(self.W, self.G, self.pairs, y, self.coef,
                                         self.y_range, self.mu, min(batch_size, self.n))
        else:
            self.work = torch.empty(2 * min(batch_size, self.n) * self.W.shape[1],
                                    device=self.dev)
        self.adam = PackedAdam(self.W, betas, eps)
        self.lr_max, self.total, self.cycle = lr_max, total, cycle
        self.generator = generator
        self.step = 0

    def __call__(self, epoch: int) -> EpochOutcome:
        n, bs, dev = self.n, self.batch_size, self.dev
        perm = torch.randperm(n, device=dev, generator=self.generator, dtype=self.idx_dtype)
        sq = torch.zeros((), dtype=torch.float64, device=dev)
        sq_numba = 0.0
        perm_np = perm.numpy() if self.numba_grad is not None else None
        lr = self.lr_max
        for s in range(0, n, bs):
            if self.numba_grad is not None and perm_np is not None:
                try:
                    sq_numba += self.numba_grad(perm_np[s : s + bs])
                except Exception as exc:  # a numba that cannot compile here: use torch
                    if self.step > 0:
                        raise
                    _warn_fallback(f"the numba kernel failed ({type(exc).__name__}: {exc})")
                    self.numba_grad = None
                    self.work = torch.empty(2 * min(bs, n) * self.W.shape[1], device=dev)
            if self.numba_grad is None:
                idx = perm[s : s + bs]
                # int64 indices: index_add_ with int32 ones takes a slow path (~4x on CPU)
                rows = self.pairs.index_select(0, idx).long()
                sq += mf_batch_grad(self.W, rows, self.y.index_select(0, idx), self.G,
                                    n_users=self.n_users, coef=self.coef,
                                    y_range=self.y_range, global_bias=self.mu, work=self.work)
            c = self.cycle
            lr = one_cycle_lr(self.step, self.total, self.lr_max, pct_start=c.pct_start,
                              div=c.div, final_div=c.final_div)
            self.adam.step(self.G, lr)
            self.step += 1
        train_loss = (sq.item() + sq_numba) / n  # one device sync per epoch
        if not math.isfinite(train_loss):
            return EpochOutcome(train_loss)
        vr = None
        if self.valid is not None and self.vpairs is not None:
            pred = packed_predict(self.W, self.vpairs, y_range=self.y_range, global_bias=self.mu)
            vr = (math.sqrt(float(((pred - self.valid[2]).double() ** 2).mean()))
                  if len(pred) else None)
        return EpochOutcome(train_loss, vr, lr)
