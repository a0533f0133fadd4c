r"""Fast biased-MF training: a hand-written gradient on one packed table, Adam, one cycle.

:class:`~collabkit.models.biased_mf.DotProductBias` has four tables (user and item factors and
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
the gradient, selected by ``kernel``
(:func:`~collabkit.models.biased_mf._trainer.resolve_kernel`):

* **numba** (the default on CPU): :func:`collabkit.models.biased_mf._numba.batch_grad`, one compiled
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
from typing import Literal

import torch

from collabkit.models.biased_mf._module import DotProductBias

__all__ = [
    "auto_batch_size",
    "AUTO_STEPS",
    "Kernel",
    "mf_batch_grad",
    "pack_tables",
    "packed_predict",
    "row_penalty_weights",
    "unpack_tables",
]

Kernel = Literal["auto", "numba", "torch"]

#: Rows scored at once when validating.
_EVAL_CHUNK = 1 << 16


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
