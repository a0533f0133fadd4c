"""Baselines printed beside every score: the global mean and damped user + item biases."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.models.base import Recommender

__all__ = ["GlobalMean", "BiasBaseline"]


class BiasBaseline(Recommender):
    r"""Damped user and item biases around the global mean, in closed form.

    .. math::

        \hat r_{ui} = \mu + b_u + b_i

    with :math:`b_i` and :math:`b_u` the damped means of
    :func:`collabkit.models.base.damped_biases` (damping 5).
    """

    kind = "bias"

    def __init__(self) -> None:
        pass

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        pass  # everything needed was learned by Recommender._fit_common

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self._baseline_idx(u, i)

    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        s = (self.global_mean_ + self.user_bias_base_[u][:, None]
             + self.item_bias_base_[None, :])
        return torch.as_tensor(s, dtype=torch.float32)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        pass


class GlobalMean(BiasBaseline):
    r"""Predicts the mean training rating :math:`\mu` for every pair (so it cannot rank)."""

    kind = "mean"

    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        return torch.full((len(u), len(self.item_vocab_)), self.global_mean_)

    def _baseline_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return np.full(u.shape, self.global_mean_, dtype=np.float64)
