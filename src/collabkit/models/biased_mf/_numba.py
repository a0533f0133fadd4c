r"""Numba CPU kernel for the batch gradient of the packed biased-MF model.

The torch path, :func:`collabkit.models.biased_mf._packed.mf_batch_grad`, gathers the batch's ``2B``
rows into a ``(B, 2, K)`` tensor, takes a batched dot product, scales the gathered rows,
scatters them back with ``index_add_`` and adds a dense penalty pass over the table: several
passes over ``2BK`` floats and a dozen kernel launches per step. :func:`batch_grad` does the
same arithmetic in two loops over the batch:

1. gather the batch's packed rows ``(u, n_users + i)`` and ratings through its slice of the
   permutation into small contiguous buffers (a tight loop of independent loads, so the cache
   misses on the shuffled positions overlap; done inside the main loop instead, they stall
   it: 0.19 s per epoch against 0.06 s on the 1M-rating benchmark);
2. for each row ``b`` read ``w_u`` and ``w_i`` once, form the dot product, the sigmoid and
   :math:`g_b`, and add :math:`g_b w_i + \tfrac{2\lambda c_u}{B} w_u` to ``G[u]`` (likewise
   for the item row) while both rows are in cache. The penalty is paid per occurrence, as in
   the torch path, and the constant columns are never written.

``G`` is zeroed first (the whole table: at 1M ratings nearly every row is touched by every
batch, and a row touched only by the previous batch must not keep its gradient; the zeroing
costs ~4 ms of a ~100 ms epoch).

One thread. Two-thread variants were measured on the project's shared 2-core machine (1M
ratings, k = 64, seconds per epoch with the Adam step; the serial kernel: 0.09-0.10) and none
was worth its second core: ``numba.prange`` under the OpenMP threading layer took 0.24 s and
its spinning workers then slowed torch's Adam step tenfold; under the workqueue layer the
gradient alone took 0.092 s against 0.079 s for the same two-phase code on one thread;
splitting it between two Python threads (one writes the user rows of ``G``, the other the
item rows; ``benchmarks/speed.py --split-threads``) took 0.11-0.12 s against 0.10. The kernel
is compiled on first use (~0.5 s) and cached on disk (``cache=True``, in ``__pycache__``; a
process then loads it in ~0.1 s). :func:`kernel` returns it, or ``None`` when numba cannot be
imported.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

numba: ModuleType | None
try:  # numba is a dependency, but the torch kernel keeps working without it
    numba = importlib.import_module("numba")
except Exception:  # noqa: BLE001  (ImportError, or a broken llvmlite / numpy mismatch)
    numba = None

__all__ = ["batch_grad", "kernel"]

#: Only reassociation (so that the dot product vectorises) and contraction (FMA); no
#: ``nnan``/``ninf``, so a diverging fit still produces the NaN the trainer checks for.
_FASTMATH = {"reassoc", "contract"}


def _batch_grad(W, G, pairs, y, idx, coef, lo, scale, use_range, mu, rows,
                yb):  # pragma: no cover  (runs compiled)
    r"""Write the gradient of batch ``idx`` into ``G``; return its squared error (float64).

    Parameters
    ----------
    W, G : float32 (R, K)
        Packed table and the gradient output (overwritten).
    pairs : int32 or int64 (N, 2)
        Packed rows ``(u, n_users + i)`` of the training set.
    y : float32 (N,)
        Ratings.
    idx : int32 or int64 (B,)
        The batch: positions in ``pairs`` and ``y``.
    coef : float32 (R,)
        :math:`\lambda c_r`.
    lo, scale, mu : float32
        ``y_range`` low end, its width ``high - low``, and :math:`\mu`.
    use_range : bool
        Whether the prediction goes through the scaled sigmoid.
    rows, yb : (>= B, 2) and (>= B,)
        Scratch for the gathered rows (same dtype as ``pairs``) and ratings (float32).
    """
    K = W.shape[1]
    k = K - 2
    B = idx.shape[0]
    for b in range(B):
        p = idx[b]
        rows[b, 0] = pairs[p, 0]
        rows[b, 1] = pairs[p, 1]
        yb[b] = y[p]
    G[:] = 0.0
    two_b = np.float32(2.0) / np.float32(B)
    gscale = scale * two_b
    sse = 0.0
    for b in range(B):
        u = rows[b, 0]
        i = rows[b, 1]
        x = np.float32(0.0)
        for j in range(K):
            x += W[u, j] * W[i, j]
        x += mu
        if use_range:
            s = np.float32(1.0) / (np.float32(1.0) + np.exp(-x))
            err = s * scale + lo - yb[b]
            g = (s - s * s) * err * gscale
        else:
            err = x - yb[b]
            g = err * two_b
        sse += err * err
        pu = coef[u] * two_b
        pi = coef[i] * two_b
        for j in range(k):
            wu = W[u, j]
            wi = W[i, j]
            G[u, j] += g * wi + pu * wu
            G[i, j] += g * wu + pi * wi
        G[u, k] += g * W[i, k] + pu * W[u, k]  # b_u; W[i, k] is the item's constant 1
        G[i, k + 1] += g * W[u, k + 1] + pi * W[i, k + 1]  # b_i; W[u, k + 1] is 1
    return sse


if numba is not None:
    batch_grad = numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)(_batch_grad)
else:
    batch_grad = None


def kernel() -> Any:
    """The compiled-on-first-call :func:`batch_grad`, or ``None`` without numba."""
    return batch_grad
