r"""EASE: the closed-form shallow autoencoder of Steck (2019), "Embarrassingly shallow
autoencoders for sparse data".

With :math:`X` the users x items interaction matrix, the item-item weights

.. math::

    B = \arg\min_B \lVert X - XB \rVert_F^2 + \lambda \lVert B \rVert_F^2
        \quad \text{s.t. } \operatorname{diag}(B) = 0

are :math:`B = I - P \operatorname{diag}(1 / \operatorname{diag} P)` with
:math:`P = (X^\top X + \lambda I)^{-1}`, and a user's scores are :math:`x_u B`. The inverse of
a dense ``n_items x n_items`` matrix costs :math:`O(n^3)` time and a few dense copies of memory,
so the model refuses catalogs that would not fit, and says how much memory they would need.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, ModelFitError
from collabkit.models.implicit._base import ImplicitRecommender
from collabkit.runtime import resolve_device, threads

__all__ = ["EASE", "ease_memory_bytes"]

#: dense n x n float32 matrices alive at once while fitting (Gram, its Cholesky factor, inverse)
_COPIES = 3


def ease_memory_bytes(n_items: int) -> int:
    """Peak memory EASE needs to fit ``n_items`` items (float32), in bytes."""
    return _COPIES * 4 * n_items * n_items


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30  # unknown platform: assume 8 GB


class EASE(ImplicitRecommender):
    r"""Closed-form item-item model for implicit feedback (kind ``"ease"``).

    The default ``reg`` was chosen by ``benchmarks/implicit_defaults.py`` (``collabkit tune``
    on training rows of ml-100k and ml-latest-small; gowalla's 40,981 items were too costly;
    results in ``benchmarks/results/implicit-defaults.md``).

    Parameters
    ----------
    reg : float, default 400.0
        :math:`\lambda`, the L2 penalty on :math:`B`.
    max_memory_gb : float or None, default None
        Refuse to fit when the dense matrices would need more than this; ``None`` allows up to
        80% of the memory available now.
    recency : float or None, default None
        Half-life, in interactions, of a past interaction's weight when scoring (needs
        timestamps); ``None`` weighs all alike. See :class:`ImplicitRecommender`.
    device : str, default "auto"
    """

    kind = "ease"

    def __init__(self, *, reg: float = 400.0, max_memory_gb: float | None = None,
                 recency: float | None = None, device: str = "auto") -> None:
        self.reg = reg
        self.max_memory_gb = max_memory_gb
        self.recency = recency
        self.device = device

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        if not (isinstance(self.reg, int | float) and math.isfinite(self.reg) and self.reg > 0):
            raise ConfigError(f"reg must be a number > 0, got {self.reg!r}")
        n = len(self.item_vocab_)
        need = ease_memory_bytes(n)
        limit = (0.8 * _available_bytes() if self.max_memory_gb is None
                 else float(self.max_memory_gb) * 1e9)
        if need > limit:
            raise ConfigError(
                f"EASE needs about {need / 1e9:.1f} GB for {n} items ({_COPIES} dense "
                f"{n} x {n} float32 matrices) and {limit / 1e9:.1f} GB is allowed; use "
                "kind 'gfcf' or 'ials' for this catalog, keep fewer items, or raise "
                "max_memory_gb")
        self.device_ = resolve_device(self.device)
        start = time.perf_counter()
        with threads(self._threads):
            x = self._train_matrix()
            gram = torch.as_tensor((x.T @ x).toarray(), dtype=torch.float32,
                                   device=self.device_)
            gram.diagonal().add_(float(self.reg))
            chol, info = torch.linalg.cholesky_ex(gram)
            if int(info) != 0:
                raise ModelFitError("the EASE Gram matrix is not positive definite; raise reg")
            del gram
            p = torch.cholesky_inverse(chol)
            del chol
            p.div_(-p.diagonal().clone().unsqueeze(0))  # B = -P / diag(P), off the diagonal
            p.diagonal().zero_()
            self.weights_ = p.contiguous()  # LAPACK returns column-major; saved row-major
        if not bool(torch.isfinite(self.weights_).all()):
            raise ModelFitError(f"EASE produced non-finite weights; raise reg (now {self.reg:g})")
        self.fit_seconds_ = time.perf_counter() - start

    @torch.no_grad()
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        xt = torch.as_tensor(sp.csr_matrix(x, dtype=np.float32).toarray(), device=self.device_)
        return xt @ self.weights_

    def _item_similarity(self, item: Any) -> np.ndarray:
        j = int(self.item_vocab_.index_strict([item], what="item")[0])
        return self.weights_[j].double().cpu().numpy()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"ease.weights": self.weights_.cpu().contiguous(), **self._recency_tensors()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        self.weights_ = tensors["ease.weights"].to(self.device_)
        self._load_common(extra)
        self._load_recency(tensors, extra)
