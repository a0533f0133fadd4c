"""Planted low-rank ratings: data whose best possible RMSE is known (the noise level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions

__all__ = ["PlantedData", "planted_low_rank"]


@dataclass(frozen=True)
class PlantedData:
    """Observed rows plus the truth they were drawn from.

    Attributes
    ----------
    data : Interactions
        The observed (noisy) ratings.
    user_factors, item_factors : numpy.ndarray
        The planted factors ``P`` (n_users, k) and ``Q`` (n_items, k).
    user_bias, item_bias : numpy.ndarray
    mean : float
    noise : float
        Standard deviation of the Gaussian noise: the RMSE floor on fresh rows.
    """

    data: Interactions
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    mean: float
    noise: float

    def truth(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Noise-free ratings for dense index pairs."""
        return (self.mean + self.user_bias[users] + self.item_bias[items]
                + np.einsum("ij,ij->i", self.user_factors[users], self.item_factors[items]))


def planted_low_rank(n_users: int = 300, n_items: int = 200, k: int = 3, density: float = 0.2,
                     noise: float = 0.1, *, mean: float = 3.0, factor_scale: float = 0.6,
                     seed: int = 0) -> PlantedData:
    r"""Ratings :math:`r_{ui} = \mu + b_u + b_i + p_u^\top q_i + \varepsilon`, on a random mask.

    Each user rates a uniform ``density`` share of the items (at least ``k + 2``), so the
    factors are identifiable. Ratings are not clipped or rounded, so an exact model fitted
    well reaches an RMSE of ``noise`` on held-out rows.
    """
    rng = np.random.default_rng(seed)
    # entries with sd factor_scale / k**0.25 give p·q a standard deviation of factor_scale**2
    P = rng.normal(0, factor_scale / k**0.25, (n_users, k))
    Q = rng.normal(0, factor_scale / k**0.25, (n_items, k))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    mask = rng.random((n_users, n_items)) < density
    for sparse_user in np.flatnonzero(mask.sum(1) < k + 2):  # rare: top up sparse users
        mask[sparse_user, rng.choice(n_items, k + 2, replace=False)] = True
    u, i = np.nonzero(mask)
    r = mean + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, noise, u.size)
    df = pd.DataFrame({"user": u, "item": i, "rating": r.astype(np.float32)})
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    lo, hi = float(df.rating.min()), float(df.rating.max())
    data = Interactions.from_dataframe(df, rating_range=(lo, hi), name="planted")
    return PlantedData(data, P, Q, bu, bi, mean, noise)
