"""Fold-in for embedding models (EmbeddingModel): fresh user rows fitted by gradient steps with
the network frozen."""

from __future__ import annotations

import numpy as np
import torch

from collabkit.models.capabilities import EmbeddingModel
from collabkit.runtime import threads


def fold_in_gradient(model: EmbeddingModel, rows: np.ndarray, items: np.ndarray,
                      values: np.ndarray, n_rows: int, *, reg: float | None, steps: int = 200,
                      lr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Fresh embedding rows fitted by Adam with every weight of the network frozen.

    The new rows start at the mean of the trained rows and minimise
    ``sum_i (r_i - f(x_u, i))^2 / n_u + reg * ||x_u - mean||^2`` per user, all users of the
    batch at once (their losses do not interact).
    """
    emb = model.user_embedding()
    dev = emb.weight.device
    center = emb.weight.detach().mean(0)
    x = center.repeat(n_rows, 1).clone().requires_grad_(True)
    lam = model.foldin_ridge() if reg is None else float(reg)
    rows_t = torch.as_tensor(rows, device=dev)
    items_t = torch.as_tensor(items, device=dev)
    r_t = torch.as_tensor(values, dtype=torch.float32, device=dev)
    counts = torch.bincount(rows_t, minlength=n_rows).clamp_min(1).float()
    opt = torch.optim.Adam([x], lr=lr)
    # tiny kernels: a second thread only adds waiting
    with threads(1 if dev.type == "cpu" else None), torch.enable_grad():
        for _ in range(steps if len(values) else 0):
            pred = model.forward_with_user_rows(x, rows_t, items_t)
            data = (((pred - r_t) ** 2) / counts[rows_t]).sum()
            loss = data + lam * ((x - center) ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return x.detach().cpu().double().numpy(), np.zeros(n_rows)


@torch.no_grad()
def score_gradient_rows(model: EmbeddingModel, vectors: np.ndarray) -> np.ndarray:
    emb = model.user_embedding()
    dev = emb.weight.device
    n_items = len(model.item_vocab_)  # type: ignore[attr-defined]
    x = torch.as_tensor(vectors, dtype=emb.weight.dtype, device=dev)
    out = np.empty((len(vectors), n_items))
    items = torch.arange(n_items, device=dev)
    for j in range(len(vectors)):
        rows = torch.full((n_items,), j, device=dev, dtype=torch.long)
        out[j] = model.forward_with_user_rows(x, rows, items).double().cpu().numpy()
    return out
