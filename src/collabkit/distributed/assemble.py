"""Rank 0 turns gathered shards into an ordinary fitted model (issue 15, part 2).

A sharded tier ends with its tables scattered over ranks and the ratings split among them.
The saved file must be the usual one (:func:`collabkit.models.persist.save_model`), which
also holds each user's seen items and the damped-bias baseline: both need every rating. So
rank 0 gathers the ratings (vocabulary indices and values, never raw ids: the vocabularies
are shared) and the tables, fills the model's data-derived attributes exactly as ``fit``
does (``_fit_common``), then hands the tables to the model's own loader (``_load_state``),
the path ``load_model`` takes. The result predicts, recommends and saves like a model
trained in one process, and loading it needs no process group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.distributed.shards import gather_rows
from collabkit.models.base import Recommender

__all__ = ["gather_interactions", "adopt"]


def gather_interactions(part: Interactions) -> Interactions | None:
    """Every rank's rows of ``part`` (same vocabularies on every rank) on rank 0, else None.

    The rating range is the union of the ranks' ranges.
    """
    ids = torch.from_numpy(np.stack([part.users, part.items], 1).astype(np.int64))
    vals = torch.from_numpy(part.ratings.astype(np.float32))
    lo, hi = part.rating_range
    rng = torch.tensor([[-lo, hi]], dtype=torch.float64)
    all_ids, all_vals, all_rng = gather_rows(ids), gather_rows(vals), gather_rows(rng)
    if all_ids is None or all_vals is None or all_rng is None:
        return None
    mx = all_rng.max(0).values
    return Interactions(users=all_ids[:, 0].numpy(), items=all_ids[:, 1].numpy(),
                        ratings=all_vals.numpy(), user_vocab=part.user_vocab,
                        item_vocab=part.item_vocab, rating_range=(-float(mx[0]), float(mx[1])),
                        name=part.name, implicit=part.implicit)


State = tuple[dict[str, torch.Tensor], dict[str, Any]]


def adopt(model: Recommender, data: Interactions,
          state: Callable[[np.ndarray, np.ndarray], State]) -> Recommender:
    """``model`` fitted on ``data`` with the state (tensors and extra, as its save file holds
    them) that ``state(users, items)`` returns. ``fit`` keeps only the ids that have ratings,
    so ``users`` and ``items`` are the rows of the shared vocabularies the model keeps, in its
    order: the tables are indexed by them."""
    model._fit_common(data)
    keep_u = data.user_vocab.index(model.user_vocab_.all_ids)
    keep_i = data.item_vocab.index(model.item_vocab_.all_ids)
    tensors, extra = state(keep_u, keep_i)
    model._load_state(tensors, extra)
    return model
