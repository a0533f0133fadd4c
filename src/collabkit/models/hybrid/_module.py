"""HybridDotProductBias: DotProductBias whose vectors also sum side-feature factors."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from collabkit.models.biased_mf._module import sigmoid_range

__all__ = ["HybridDotProductBias"]


class HybridDotProductBias(nn.Module):
    r"""DotProductBias whose user and item vectors and biases add side-feature terms.

    .. math::

        \tilde q_i &= q_i + \sum_g x_{ig}\, v_g, \qquad
        \tilde b_i = b_i + \sum_g x_{ig}\, c_g, \\
        \tilde p_u &= p_u + \sum_{k} w_{k,\,d_{uk}}, \qquad
        \tilde b_u = b_u + \sum_{k} a_{k,\,d_{uk}}, \\
        \hat r_{ui} &= \operatorname{sigmoid\_range}\big(\tilde p_u^\top \tilde q_i
            + \tilde b_u + \tilde b_i + \mu + \beta^\top t_{ui},\; y_{lo}, y_{hi}\big)

    where :math:`x_i` are the item's numbers (genres multi-hot, standardised year and its
    missing flag), :math:`d_{uk}` the user's category in column :math:`k` (age bucket,
    gender, occupation) and :math:`t_{ui}` the rating-time numbers. A cold item (or user)
    has :math:`q_i = 0, b_i = 0` and is scored from its features alone.

    Parameters
    ----------
    n_users, n_items, n_factors, y_range, init_std, global_bias
        As in :class:`~collabkit.models.biased_mf._module.DotProductBias`.
    n_item_numbers : int
        Width of the item numbers :math:`x_i` (0: none).
    user_cardinalities : sequence of int
        Rows of each user category table (0 columns: none).
    n_time : int
        Width of the rating-time numbers (0: no time term).
    id_dropout : float
        In training, the share of rows whose user (item) own terms :math:`p_u, b_u`
        (:math:`q_i, b_i`) are zeroed, on the sides that have features, so that the feature
        terms alone must predict those rows, as they will for cold ids (DropoutNet, Volkovs
        et al. 2017). With Adam the shared feature factors otherwise learn no faster than the
        per-id ones, and cold ids get only part of the signal.
    """

    # buffers (register_buffer), typed for mypy
    user_cat_offsets: torch.Tensor
    global_bias: torch.Tensor

    def __init__(self, n_users: int, n_items: int, n_factors: int = 50,
                 y_range: tuple[float, float] | None = (0.0, 5.5), *,
                 n_item_numbers: int = 0, user_cardinalities: Iterable[int] = (),
                 n_time: int = 0, id_dropout: float = 0.0, init_std: float = 0.01,
                 global_bias: float = 0.0) -> None:
        super().__init__()
        self.id_dropout = float(id_dropout)
        cards = [int(c) for c in user_cardinalities]
        self.user_factors = nn.Embedding(n_users, n_factors)
        self.item_factors = nn.Embedding(n_items, n_factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.item_feat_factors = (nn.Linear(n_item_numbers, n_factors, bias=False)
                                  if n_item_numbers else None)
        self.item_feat_bias = nn.Linear(n_item_numbers, 1, bias=False) if n_item_numbers else None
        self.user_cat_factors = nn.Embedding(sum(cards), n_factors) if cards else None
        self.user_cat_bias = nn.Embedding(sum(cards), 1) if cards else None
        self.time_bias = nn.Linear(n_time, 1, bias=False) if n_time else None
        self.register_buffer("user_cat_offsets",
                             torch.as_tensor(np.cumsum([0, *cards[:-1]]), dtype=torch.int64))
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        self.register_buffer("global_bias", torch.tensor(float(global_bias)))
        with torch.no_grad():
            for t in (self.user_factors, self.item_factors, self.item_feat_factors,
                      self.user_cat_factors):
                if t is not None:
                    t.weight.normal_(0.0, init_std)
            for t in (self.user_bias, self.item_bias, self.item_feat_bias, self.user_cat_bias,
                      self.time_bias):
                if t is not None:
                    t.weight.zero_()

    def _id_terms(self, factors: nn.Embedding, bias: nn.Embedding, idx: torch.Tensor,
                  cold: bool, has_features: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The id's own vector and bias; zero for ``-1`` (cold) or a row hit by id dropout."""
        if cold:
            keep, idx = idx >= 0, idx.clamp(min=0)
        elif self.training and self.id_dropout > 0 and has_features:
            keep = torch.rand(idx.shape, device=idx.device) >= self.id_dropout
        else:
            return factors(idx), bias(idx).squeeze(-1)
        k = keep.to(factors.weight.dtype)
        return factors(idx) * k.unsqueeze(-1), bias(idx).squeeze(-1) * k

    def user_repr(self, users: torch.Tensor, cats: torch.Tensor, cold: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors :math:`\\tilde p_u` ``(n, k)`` and biases :math:`\\tilde b_u` ``(n,)``."""
        p, b = self._id_terms(self.user_factors, self.user_bias, users, cold,
                              self.user_cat_factors is not None)
        if self.user_cat_factors is not None and self.user_cat_bias is not None:
            idx = cats + self.user_cat_offsets
            p = p + self.user_cat_factors(idx).sum(1)
            b = b + self.user_cat_bias(idx).sum(1).squeeze(-1)
        return p, b

    def item_repr(self, items: torch.Tensor, numbers: torch.Tensor, cold: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Item vectors :math:`\\tilde q_i` ``(n, k)`` and biases :math:`\\tilde b_i` ``(n,)``."""
        q, b = self._id_terms(self.item_factors, self.item_bias, items, cold,
                              self.item_feat_factors is not None)
        if self.item_feat_factors is not None and self.item_feat_bias is not None:
            q = q + self.item_feat_factors(numbers)
            b = b + self.item_feat_bias(numbers).squeeze(-1)
        return q, b

    def time_term(self, time_numbers: torch.Tensor) -> torch.Tensor:
        """:math:`\\beta^\\top t_{ui}`, shape ``(n,)`` (zeros without time features)."""
        if self.time_bias is None:
            return time_numbers.new_zeros(time_numbers.shape[0])
        return self.time_bias(time_numbers).squeeze(-1)

    def _out(self, raw: torch.Tensor) -> torch.Tensor:
        return raw if self.y_range is None else sigmoid_range(raw, *self.y_range)

    def forward(self, users: torch.Tensor, items: torch.Tensor, item_numbers: torch.Tensor,
                user_cats: torch.Tensor, time_numbers: torch.Tensor, *,
                cold: bool = False) -> torch.Tensor:
        """Predicted ratings, shape ``(batch,)``; with ``cold``, index ``-1`` has no own terms."""
        p, bu = self.user_repr(users, user_cats, cold)
        q, bi = self.item_repr(items, item_numbers, cold)
        raw = (p * q).sum(-1) + bu + bi + self.global_bias + self.time_term(time_numbers)
        return self._out(raw)
