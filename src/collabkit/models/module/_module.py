"""The chapter's CollabNN: the default module of kind ``"module"``."""

from __future__ import annotations

import torch
from torch import nn

from collabkit.models.biased_mf._module import sigmoid_range
from collabkit.models.module._spec import remember_args

__all__ = ["CollabNN"]


@remember_args
class CollabNN(nn.Module):
    """Concatenated user and item embeddings through one hidden layer (the chapter's CollabNN).

    Parameters
    ----------
    user_sz, item_sz : (rows, width)
        The two embedding tables, as :func:`collabkit.emb_sizes` gives them.
    y_range : (low, high)
        Output range of the final sigmoid.
    n_act : int
        Width of the hidden layer.
    """

    def __init__(self, user_sz: tuple[int, int], item_sz: tuple[int, int],
                 y_range: tuple[float, float] = (0.0, 5.5), n_act: int = 100) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(*user_sz)
        self.item_factors = nn.Embedding(*item_sz)
        self.layers = nn.Sequential(nn.Linear(user_sz[1] + item_sz[1], n_act), nn.ReLU(),
                                    nn.Linear(n_act, 1))
        self.y_range = (float(y_range[0]), float(y_range[1]))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        embs = torch.cat([self.user_factors(users), self.item_factors(items)], dim=1)
        return sigmoid_range(self.layers(embs).squeeze(-1), *self.y_range)
