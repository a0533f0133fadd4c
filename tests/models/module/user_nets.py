"""Networks written as a collabkit user would write them (issue 12): plain torch modules in
an importable file, handed to ``collabkit.fit(train, model=...)``."""

import torch
from torch import nn

import collabkit


def sigmoid_range(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return torch.sigmoid(x) * (hi - lo) + lo


@collabkit.remember_args
class CollabNN(nn.Module):
    """The chapter's CollabNN, with torch's Embedding in place of fastai's."""

    def __init__(self, user_sz, item_sz, y_range=(0, 5.5), n_act=100):
        super().__init__()
        self.user_factors = nn.Embedding(*user_sz)
        self.item_factors = nn.Embedding(*item_sz)
        self.layers = nn.Sequential(
            nn.Linear(user_sz[1] + item_sz[1], n_act),
            nn.ReLU(),
            nn.Linear(n_act, 1))
        self.y_range = y_range

    def forward(self, users, items):
        embs = self.user_factors(users), self.item_factors(items)
        x = self.layers(torch.cat(embs, dim=1))
        return sigmoid_range(x, *self.y_range)  # shape (batch, 1), as in the chapter


class DotProductBias(nn.Module):
    """The chapter's DotProductBias, its arguments kept as attributes (no decorator)."""

    def __init__(self, n_users, n_items, n_factors, y_range=(0, 5.5)):
        super().__init__()
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.user_factors = nn.Embedding(n_users, n_factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_factors = nn.Embedding(n_items, n_factors)
        self.item_bias = nn.Embedding(n_items, 1)
        self.y_range = y_range

    def forward(self, users, items):
        res = (self.user_factors(users) * self.item_factors(items)).sum(dim=1)
        res = res + self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0]
        return sigmoid_range(res, *self.y_range)


class Forgetful(nn.Module):
    """Keeps none of its constructor arguments: cannot be saved."""

    def __init__(self, n_users, n_items):
        super().__init__()
        self.u_emb = nn.Embedding(n_users, 3)
        self.i_emb = nn.Embedding(n_items, 3)

    def forward(self, users, items):
        return (self.u_emb(users) * self.i_emb(items)).sum(1) + 3.0
