"""Planted low-rank ratings: data whose best possible RMSE is known (the noise level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions

__all__ = ["PlantedData", "long_tail", "planted_low_rank"]


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


def long_tail(n_users: int = 3000, n_items: int = 30000, n_ratings: int = 60000, *,
              item_exponent: float = 0.9, seed: int = 0) -> pd.DataFrame:
    r"""A sparse long-tail catalog rated 1-5: most items have one to three ratings.

    Items are drawn by a Zipf law (weight :math:`j^{-a}` for the ``j``-th most popular, ``a``
    the ``item_exponent``; a flatter law, a smaller ``a``, rates more of the catalog),
    users by a Pareto activity law; each distinct pair drawn (at most ``n_ratings``) is rated
    :math:`\operatorname{clip}_{[1,5]}\operatorname{round}(3.7 + b_u + b_i + p_u^\top q_i +
    \varepsilon)`, with rank-5 factors, :math:`b_u \sim N(0, 0.4^2)`, :math:`b_i \sim N(0,
    0.5^2)` and noise :math:`\varepsilon \sim N(0, 0.8^2)`. On such data a factor model
    learns little beyond damped biases (issue 14's "sparse" set of ``benchmarks/defaults.py``).

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item`` (dense ints) and ``rating``, in random order.
    """
    rng = np.random.default_rng(seed)
    k = 5
    P, Q = rng.normal(0, 0.5, (n_users, k)), rng.normal(0, 0.5, (n_items, k))
    bu, bi = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_items)
    w_u = 1.0 + rng.pareto(1.3, n_users)
    w_i = 1.0 / np.arange(1, n_items + 1) ** float(item_exponent)
    u = rng.choice(n_users, 2 * n_ratings, p=w_u / w_u.sum())
    i = rng.permutation(n_items)[rng.choice(n_items, 2 * n_ratings, p=w_i / w_i.sum())]
    pairs = np.unique(np.stack([u, i], 1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:n_ratings]]
    u, i = pairs[:, 0], pairs[:, 1]
    r = 3.7 + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, 0.8, len(u))
    return pd.DataFrame({"user": u, "item": i, "rating": np.clip(np.rint(r), 1, 5)})
