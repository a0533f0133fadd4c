"""The DotProductBias module: latent factors plus biases, squashed into a rating range."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DotProductBias", "sigmoid_range"]


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Map ``x`` into ``(low, high)`` with a scaled sigmoid: ``low + (high - low) * σ(x)``."""
    return torch.sigmoid(x) * (high - low) + low


class DotProductBias(nn.Module):
    r"""Biased matrix factorisation, as in the fast.ai chapter.

    .. math::

        \hat r_{ui} = \operatorname{sigmoid\_range}\big(p_u^\top q_i + b_u + b_i + \mu,\;
        y_{lo}, y_{hi}\big)

    where :math:`p_u, q_i \in \mathbb{R}^k` are the user and item factors and
    :math:`b_u, b_i` their biases. Without ``y_range`` the raw sum is returned.

    Parameters
    ----------
    n_users, n_items : int
        Number of rows of the user and item tables.
    n_factors : int
        Latent dimension ``k``.
    y_range : tuple of float or None
        Output range of the sigmoid; ``(0, 5.5)`` suits 1–5 stars (the sigmoid never quite
        reaches its ends, so the top is set above 5).
    init_std : float
        Standard deviation of the normal initialisation of the factors (biases start at 0).
    global_bias : float
        :math:`\mu`, a fixed offset (in logit space when ``y_range`` is set) so that training
        starts near the mean rating.
    """

    global_bias: torch.Tensor  # a buffer (register_buffer)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_factors: int = 50,
        y_range: tuple[float, float] | None = (0.0, 5.5),
        *,
        init_std: float = 0.01,
        global_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(n_users, n_factors)
        self.item_factors = nn.Embedding(n_items, n_factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        self.register_buffer("global_bias", torch.tensor(float(global_bias)))
        with torch.no_grad():
            self.user_factors.weight.normal_(0.0, init_std)
            self.item_factors.weight.normal_(0.0, init_std)
            self.user_bias.weight.zero_()
            self.item_bias.weight.zero_()

    def raw(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The score before the sigmoid range, shape ``(batch,)``."""
        dot = (self.user_factors(users) * self.item_factors(items)).sum(-1)
        return (
            dot
            + self.user_bias(users).squeeze(-1)
            + self.item_bias(items).squeeze(-1)
            + self.global_bias
        )

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings for index tensors ``users`` and ``items``, shape ``(batch,)``."""
        res = self.raw(users, items)
        if self.y_range is None:
            return res
        return sigmoid_range(res, *self.y_range)
