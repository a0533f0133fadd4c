r"""Fast biased-MF training: a hand-written gradient on one packed table, Adam, one cycle.

:class:`~collabkit.models.dot.DotProductBias` has four tables (user and item factors and
biases). Training packs them into one table ``W`` of ``n_users + n_items`` rows and ``k + 2``
columns, so that a prediction is one dot product of two rows:

.. math::

    w_u = (p_u,\; b_u,\; 1), \qquad w_{n_U + i} = (q_i,\; 1,\; b_i), \qquad
    x_{ui} = w_u^\top w_{n_U + i} + \mu = p_u^\top q_i + b_u + b_i + \mu

and :math:`\hat r_{ui} = y_{lo} + (y_{hi} - y_{lo})\,\sigma(x_{ui})` (or :math:`x_{ui}` itself
without a ``y_range``). The loss minimised is the mean over the training rows of

.. math::

    \ell_{ui} = (\hat r_{ui} - r_{ui})^2
        + \lambda \big(c_u \lVert\theta_u\rVert^2 + c_i \lVert\theta_i\rVert^2\big),
    \qquad c_u = \Big(\frac{N / n_U}{n_u}\Big)^{\alpha}

where :math:`\theta_u = (p_u, b_u)` and :math:`\theta_i = (q_i, b_i)` are the learned parts of
the rows, :math:`n_u` the number of training rows of user ``u`` and :math:`N / n_U` the mean
(likewise for items). The penalty is paid once per *occurrence* of a row in a batch, so a
minibatch of any size is an unbiased estimate of the same objective: unlike AdamW's decoupled
decay, which shrinks every row at every step, it does not grow with the number of steps, and
large batches keep their accuracy. With :math:`\alpha = 0` this is the classic Funk-SVD
penalty (frequent rows are penalised in proportion to their count); :math:`\alpha = 1/2`
(the default) grows it only as :math:`\sqrt{n_u}`, which measured slightly better on
MovieLens 100k u1 (test RMSE 0.919 against 0.922 for :math:`\alpha = 0`, 5 epochs).

The gradient of a batch is written out by hand (no autograd graph): with
:math:`g_b = \tfrac{2}{B}(\hat r_b - r_b)(y_{hi} - y_{lo})\,\sigma(x_b)(1 - \sigma(x_b))`,

.. math::

    \nabla_{w_u} = \sum_{b: u_b = u} g_b\, w_{n_U + i_b} + \frac{2\lambda c_u}{B}\,
        \#\{b: u_b = u\}\; w_u

and the same for item rows, then one fused Adam step (``torch._fused_adam_``) on the whole
table; the constant columns are never updated (their gradient is zero). Two kernels compute
the gradient, selected by ``kernel`` (:func:`resolve_kernel`):

* **numba** (the default on CPU): :func:`collabkit.train._numba.batch_grad`, one compiled
  loop over the batch that reads the two rows of each rating, forms the dot product, the
  sigmoid and :math:`g_b`, and adds :math:`g_b w_{n_U+i}` plus the row's penalty into ``G[u]``
  (and the mirror into the item row) directly, without materialising the gathered batch.
  It runs on one thread; compiled on first use and cached on disk (about 0.5 s once, then
  ~0.1 s to load per process).
* **torch**: :func:`mf_batch_grad`, one gather of the ``2B`` rows, one batched dot product,
  one scaling and one ``index_add_`` into the gradient table. Used on CUDA and when numba is
  not importable.

One epoch over 1M synthetic ML-25M-shaped ratings at k = 64 (batch 16,384, 62 steps) on the
project's 2-core machine, one thread: 0.10 s with the numba kernel (gradient ~70 %, Adam
~24 %, the shuffle ~7 %) against 0.25 s with the torch kernel (``benchmarks/speed.py``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from collabkit.errors import ConfigError, ModelFitError
from collabkit.models.dot import DotProductBias
from collabkit.runtime import threads
from collabkit.train.loop import EpochStats, TrainResult

__all__ = [
    "auto_batch_size",
    "AUTO_STEPS",
    "fit_biased_mf",
    "mf_batch_grad",
    "one_cycle_lr",
    "pack_tables",
    "packed_predict",
    "resolve_kernel",
    "row_penalty_weights",
    "unpack_tables",
]

Kernel = Literal["auto", "numba", "torch"]

#: Rows scored at once when validating.
_EVAL_CHUNK = 1 << 16


def one_cycle_lr(step: int, total: int, lr_max: float, *, pct_start: float = 0.25,
                 div: float = 25.0, final_div: float = 1e4) -> float:
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


#: Steps per epoch that :func:`auto_batch_size` aims for.
AUTO_STEPS = (32, 96)


def auto_batch_size(n_rows: int, batch_size: int, lr: float) -> tuple[int, float]:
    r"""Batch size and peak learning rate for ``n_rows`` training rows.

    The batch is halved or doubled from ``batch_size`` until an epoch takes between 32 and
    96 steps (:data:`AUTO_STEPS`; never below 32 rows). When it grows, the learning rate
    grows as the cube root of the growth, :math:`\eta = \eta_0 (B / B_0)^{1/3}`; when it
    shrinks, ``lr`` is kept.

    Why: the per-occurrence penalty makes the objective independent of the batch size, so the
    batch can follow the data. Every step touches the whole table (one Adam update), so on
    large data a fixed batch would spend its time in the optimizer; on small data a batch of
    1,024 leaves too few steps to converge (12k planted ratings: test RMSE 0.35 with 11 steps
    per epoch, 0.21 with 42). Measured on synthetic ML-25M-shaped data (k = 64, 5 epochs,
    900k training rows): batches of 1,024 / 8,192 / 16,384 rows with learning rates
    0.01 / 0.02 / 0.025 reach test RMSE 0.781 / 0.779 / 0.780; on 4.5M rows a batch of
    65,536 reached 0.770 with 0.04 (cube-root rule) and 0.773 with 0.08 (square-root rule).

    Returns
    -------
    (batch_size, lr)
    """
    lo_steps, hi_steps = AUTO_STEPS
    b = int(batch_size)
    while math.ceil(n_rows / b) > hi_steps:
        b *= 2
    while b > 32 and math.ceil(n_rows / b) < lo_steps:
        b //= 2
    growth = max(1.0, b / batch_size)
    return b, float(lr) * growth ** (1.0 / 3.0)


def pack_tables(module: DotProductBias) -> torch.Tensor:
    """One ``(n_users + n_items, k + 2)`` float32 table holding the module's four tables.

    User rows are ``(p_u, b_u, 1)`` and item rows ``(q_i, 1, b_i)``.
    """
    P, Q = module.user_factors.weight.detach(), module.item_factors.weight.detach()
    nu, k = P.shape
    W = torch.empty(nu + Q.shape[0], k + 2, dtype=torch.float32, device=P.device)
    W[:nu, :k] = P
    W[nu:, :k] = Q
    W[:nu, k] = module.user_bias.weight.detach()[:, 0]
    W[nu:, k + 1] = module.item_bias.weight.detach()[:, 0]
    W[:nu, k + 1] = 1.0
    W[nu:, k] = 1.0
    return W


@torch.no_grad()
def unpack_tables(W: torch.Tensor, module: DotProductBias) -> None:
    """Copy a packed table back into ``module``'s four embeddings (in place)."""
    nu, k = module.user_factors.weight.shape
    module.user_factors.weight.copy_(W[:nu, :k])
    module.item_factors.weight.copy_(W[nu:, :k])
    module.user_bias.weight.copy_(W[:nu, k : k + 1])
    module.item_bias.weight.copy_(W[nu:, k + 1 : k + 2])


def row_penalty_weights(pairs: torch.Tensor, n_users: int, n_items: int,
                        exponent: float) -> torch.Tensor:
    r"""Per-occurrence penalty weights :math:`c_r = ((N / n_{side}) / n_r)^{\alpha}`.

    Parameters
    ----------
    pairs : Tensor of shape (N, 2)
        Packed row indices ``(u, n_users + i)`` of the training rows.
    n_users, n_items : int
    exponent : float
        :math:`\alpha`; 0 gives every occurrence weight 1.

    Returns
    -------
    Tensor of shape (n_users + n_items,), float32
    """
    n = pairs.shape[0]
    counts = torch.bincount(pairs.reshape(-1), minlength=n_users + n_items)
    counts = counts.clamp_(min=1).to(torch.float32)
    mean = torch.empty_like(counts)
    mean[:n_users] = n / max(1, n_users)
    mean[n_users:] = n / max(1, n_items)
    return (mean / counts).pow_(float(exponent))


def mf_batch_grad(W: torch.Tensor, rows: torch.Tensor, y: torch.Tensor, G: torch.Tensor, *,
                  n_users: int, coef: torch.Tensor, y_range: tuple[float, float] | None,
                  global_bias: float, work: torch.Tensor | None = None) -> torch.Tensor:
    r"""Write the gradient of one batch's loss into ``G``; return the batch's squared error.

    The batch loss is
    :math:`\frac1B\sum_b (\hat r_b - r_b)^2 + \frac{\lambda}{B}\sum_b
    (c_{u_b}\lVert\theta_{u_b}\rVert^2 + c_{i_b}\lVert\theta_{i_b}\rVert^2)`
    (see the module docstring); ``coef`` holds :math:`\lambda c_r` per packed row.

    Parameters
    ----------
    W : Tensor (R, k + 2)
        Packed table (see :func:`pack_tables`).
    rows : Tensor (B, 2)
        Packed rows ``(u, n_users + i)`` of the batch, int64.
    y : Tensor (B,)
        Ratings, float32.
    G : Tensor (R, k + 2)
        Output; overwritten with the gradient (zero on rows the batch does not touch, and on
        the constant columns).
    n_users : int
    coef : Tensor (R,)
        :math:`\lambda c_r`.
    y_range : (low, high) or None
    global_bias : float
        :math:`\mu`.
    work : Tensor or None
        Scratch space of at least ``2 B (k + 2)`` floats, reused across batches so that no
        step allocates (and page-faults in) its two large temporaries.

    Returns
    -------
    Tensor
        0-d float32 tensor, :math:`\sum_b (\hat r_b - r_b)^2` (not synchronised).
    """
    B, K = rows.shape[0], W.shape[1]
    flat = rows.reshape(-1)
    if work is None:
        E = W.index_select(0, flat).view(B, 2, K)
    else:
        E = torch.index_select(W, 0, flat, out=work[: 2 * B * K].view(2 * B, K)).view(B, 2, K)
    x = torch.bmm(E[:, 0:1], E[:, 1:2].transpose(1, 2)).view(B)
    if global_bias:
        x = x + global_bias
    if y_range is None:
        err = x - y
        gx = err * (2.0 / B)
    else:
        lo, hi = y_range
        s = torch.sigmoid(x)
        err = s.mul(hi - lo).add_(lo).sub_(y)
        gx = (s - s * s).mul_(err).mul_(2.0 * (hi - lo) / B)
    # penalty: 2 λ c_r / B per occurrence, on the row's own value (dense over the table)
    occ = torch.bincount(flat, minlength=W.shape[0])
    torch.mul(W, (occ * coef).mul_(2.0 / B).unsqueeze(1), out=G)
    # data term: row u receives g_b * w_{item}, row item receives g_b * w_u (swapped scatter)
    S = E.mul_(gx.view(B, 1, 1)) if work is not None else E * gx.view(B, 1, 1)
    G.index_add_(0, rows.flip(1).reshape(-1), S.view(2 * B, K))
    k = K - 2
    G[:n_users, k + 1] = 0.0
    G[n_users:, k] = 0.0
    return torch.dot(err, err)


class _Adam:
    """Adam on one dense table, with the step counter and moments it owns.

    Uses torch's fused CPU/GPU kernel (``torch._fused_adam_``, one pass over the table) when
    this torch has it, else the same update from plain tensor ops.
    """

    def __init__(self, W: torch.Tensor, betas: tuple[float, float], eps: float) -> None:
        self.W = W
        self.m = torch.zeros_like(W)
        self.v = torch.zeros_like(W)
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.step_t = torch.zeros((), dtype=torch.float32, device=W.device)
        self.fused = hasattr(torch, "_fused_adam_") and W.device.type in ("cpu", "cuda")

    def step(self, G: torch.Tensor, lr: float) -> None:
        self.t += 1
        if self.fused:
            self.step_t += 1
            torch._fused_adam_([self.W], [G], [self.m], [self.v], [], [self.step_t], lr=lr,
                               beta1=self.b1, beta2=self.b2, weight_decay=0.0, eps=self.eps,
                               amsgrad=False, maximize=False)
            return
        self.manual_step(G, lr)

    def manual_step(self, G: torch.Tensor, lr: float) -> None:
        """The update from plain ops (also the reference the fused kernel is tested against)."""
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        self.m.lerp_(G, 1.0 - self.b1)
        self.v.mul_(self.b2).addcmul_(G, G, value=1.0 - self.b2)
        denom = self.v.sqrt().div_(math.sqrt(bc2)).add_(self.eps)
        self.W.addcdiv_(self.m, denom, value=-lr / bc1)


@torch.no_grad()
def packed_predict(W: torch.Tensor, rows: torch.Tensor, *, y_range: tuple[float, float] | None,
                   global_bias: float) -> torch.Tensor:
    """Predictions of the packed model for packed rows ``(B, 2)``, in chunks."""
    out = []
    for s in range(0, rows.shape[0], _EVAL_CHUNK):
        r = rows[s : s + _EVAL_CHUNK]
        E = W.index_select(0, r.reshape(-1)).view(r.shape[0], 2, W.shape[1])
        x = torch.bmm(E[:, 0:1], E[:, 1:2].transpose(1, 2)).view(-1) + global_bias
        out.append(x if y_range is None else torch.sigmoid(x) * (y_range[1] - y_range[0])
                   + y_range[0])
    return torch.cat(out) if out else W.new_zeros(0)


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
    :func:`one_cycle_lr` (``lr_max / 25`` → ``lr_max`` → ``lr_max / 1e4``).

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
        :mod:`collabkit.train._numba`), so with it the setting only reaches the Adam step: 2
        measured 0.096 s per 1M-rating epoch against 0.100 s for 1 on a quiet machine, and
        0.30 s under load.
    callback : callable or None
        Called with an :class:`~collabkit.train.loop.EpochStats` after every epoch.
    kernel : {"auto", "numba", "torch"}
        The batch gradient: ``"numba"`` the fused CPU kernel
        :func:`collabkit.train._numba.batch_grad`, ``"torch"`` :func:`mf_batch_grad`;
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
    from collabkit.train import _numba

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
    """:func:`collabkit.train._numba.batch_grad` bound to one fit's arrays.

    CPU tensors and their ``.numpy()`` views share memory, so the kernel writes the ``G`` that
    the Adam step reads and reads the ``W`` it updates.
    """

    def __init__(self, W: torch.Tensor, G: torch.Tensor, pairs: torch.Tensor, y: torch.Tensor,
                 coef: torch.Tensor, y_range: tuple[float, float] | None, mu: float,
                 batch_size: int) -> None:
        from collabkit.train import _numba

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
    dev = y.device
    n_users = module.user_factors.num_embeddings
    n_items = module.item_factors.num_embeddings
    idx_dtype = torch.int32 if n_users + n_items < 2**31 else torch.int64
    pairs = torch.stack([users.to(idx_dtype), items.to(idx_dtype) + n_users], 1)
    coef = row_penalty_weights(pairs, n_users, n_items, reg_exponent).mul_(float(wd))
    vpairs = None
    if valid is not None:
        vpairs = torch.stack([valid[0].to(idx_dtype), valid[1].to(idx_dtype) + n_users], 1)
    y_range, mu = module.y_range, float(module.global_bias)
    W = pack_tables(module)
    G = torch.zeros_like(W)
    n = y.shape[0]
    work = None
    numba_grad = None
    if use_numba:
        numba_grad = _NumbaGrad(W, G, pairs, y, coef, y_range, mu, min(batch_size, n))
    else:
        work = torch.empty(2 * min(batch_size, y.shape[0]) * W.shape[1], device=dev)
    adam = _Adam(W, betas, eps)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total = epochs * steps_per_epoch
    result = TrainResult()
    start = time.perf_counter()
    step = 0
    lr = lr_max
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev, generator=generator, dtype=idx_dtype)
        sq = torch.zeros((), dtype=torch.float64, device=dev)
        sq_numba = 0.0
        perm_np = perm.numpy() if numba_grad is not None else None
        for s in range(0, n, batch_size):
            if numba_grad is not None:
                try:
                    sq_numba += numba_grad(perm_np[s : s + batch_size])
                except Exception as exc:  # a numba that cannot compile here: use torch
                    if step > 0:
                        raise
                    _warn_fallback(f"the numba kernel failed ({type(exc).__name__}: {exc})")
                    numba_grad = None
                    work = torch.empty(2 * min(batch_size, n) * W.shape[1], device=dev)
            if numba_grad is None:
                idx = perm[s : s + batch_size]
                # int64 indices: index_add_ with int32 ones takes a slow path (~4x on CPU)
                rows = pairs.index_select(0, idx).long()
                sq += mf_batch_grad(W, rows, y.index_select(0, idx), G,
                                    n_users=n_users, coef=coef, y_range=y_range,
                                    global_bias=mu, work=work)
            lr = one_cycle_lr(step, total, lr_max, pct_start=pct_start)
            adam.step(G, lr)
            step += 1
        train_loss = (sq.item() + sq_numba) / n  # one device sync per epoch
        if not math.isfinite(train_loss):
            raise ModelFitError(
                f"training loss became {train_loss} in epoch {epoch + 1}; the model diverged. "
                f"Lower the learning rate (lr={lr_max:g}) or raise the weight decay (wd={wd:g}).")
        vr = None
        if valid is not None:
            pred = packed_predict(W, vpairs, y_range=y_range, global_bias=mu)
            vr = math.sqrt(float(((pred - valid[2]).double() ** 2).mean())) if len(pred) else None
        stats = EpochStats(epoch + 1, train_loss, vr, lr, time.perf_counter() - t0)
        result.history.append(stats)
        if callback is not None:
            callback(stats)
    if not bool(torch.isfinite(W).all()):
        raise ModelFitError("the trained factors hold NaN or infinite values; the model "
                            f"diverged. Lower the learning rate (lr={lr_max:g}) or raise the "
                            f"weight decay (wd={wd:g}).")
    unpack_tables(W, module)
    result.fit_seconds = time.perf_counter() - start
    return result
