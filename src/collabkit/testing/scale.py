r"""Synthetic ratings with MovieLens-25M's shape, at any size, for speed and memory checks.

ML-25M has 162,541 users, 59,047 items and 25,000,095 ratings: every user has at least 20
ratings and a few have thousands, and item popularity falls off as a power law. A set of
``n`` ratings here keeps those ratios (about 154 ratings per user and 423 per item), so
1M ratings have 6,502 users and 2,362 items and 25M ratings have ML-25M's own counts.

The ratings carry a planted low-rank signal, rounded to half stars in ``[0.5, 5]`` as in
ML-25M:

.. math::

    r_{ui} = \operatorname{clip}_{[0.5, 5]}\Big(\tfrac12 \operatorname{round}\big(
        2(\mu + b_u + b_i + p_u^\top q_i + \varepsilon_{ui})\big)\Big),
    \qquad \varepsilon_{ui} \sim \mathcal N(0, \sigma^2)

Generation is vectorised over chunks of users (about two million ratings at a time), so its
memory is the output arrays plus one chunk: 25M ratings take a few seconds and under 1 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.errors import ConfigError

__all__ = ["ML25M_SHAPE", "ScaleData", "ml25m_like"]

#: (users, items, ratings) of MovieLens 25M.
ML25M_SHAPE = (162_541, 59_047, 25_000_095)


@dataclass(frozen=True)
class ScaleData:
    """Generated ratings and the truth behind them.

    Attributes
    ----------
    data : Interactions
        Users ``0..n_users-1`` and items ``0..n_items-1`` as raw ids, sorted by user.
    user_factors, item_factors : numpy.ndarray
    user_bias, item_bias : numpy.ndarray
    mean : float
    noise : float
        Standard deviation of the Gaussian noise before rounding.
    """

    data: Interactions
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    mean: float
    noise: float

    def truth(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Noise-free (unrounded, unclipped) ratings for dense index pairs."""
        return (self.mean + self.user_bias[users] + self.item_bias[items]
                + np.einsum("ij,ij->i", self.user_factors[users], self.item_factors[items]))


def _user_counts(rng: np.random.Generator, n_users: int, n_items: int, n: int,
                 min_count: int) -> np.ndarray:
    """Ratings per user: ``min_count`` plus a Pareto tail, scaled to sum to ``n``."""
    cap = max(1, n_items // 2)
    lo = min(min_count, cap, max(1, n // n_users))
    raw = lo + rng.pareto(1.2, n_users) * 25.0  # Lomax tail; mean ≈ lo + 125
    raw = np.minimum(raw, cap)
    extra = max(0, n - lo * n_users)
    tail = raw - lo
    counts = np.full(n_users, lo, dtype=np.int64)
    if extra and tail.sum() > 0:
        share = np.floor(tail / tail.sum() * extra).astype(np.int64)
        counts += np.minimum(share, cap - lo)
    short = n - int(counts.sum())
    while short > 0:  # hand out what the floors and caps left, one per user with room
        room = np.flatnonzero(counts < cap)
        if room.size == 0:
            break
        pick = rng.choice(room, size=min(short, room.size), replace=False)
        counts[pick] += 1
        short = n - int(counts.sum())
    return counts


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy 2's hash-based unique is several times slower here)."""
    a = np.sort(a)
    if a.size < 2:
        return a
    return a[np.concatenate([[True], a[1:] != a[:-1]])]


def _sample_light(rng: np.random.Generator, users: np.ndarray, counts: np.ndarray,
                  cum: np.ndarray, n_items: int) -> np.ndarray:
    """Distinct pair keys ``u * n_items + i``, ``counts[j]`` of them for ``users[j]``.

    Items are drawn with replacement ∝ popularity; the users left short by duplicates redraw
    twice what they miss until every user has its count, and users that overshoot keep a
    random subset. Meant for users whose count is a small share of the items.
    """
    done: list[np.ndarray] = []
    keys = np.zeros(0, dtype=np.int64)
    todo_u, todo_c, want = users, counts, counts
    for _ in range(30):
        if todo_u.size == 0:
            break
        want_u = np.repeat(todo_u, want)
        draw = np.searchsorted(cum, rng.random(want_u.size) * cum[-1], side="right")
        keys = _sorted_unique(np.concatenate(
            [keys, want_u * n_items + np.minimum(draw, n_items - 1)]))
        ku = keys // n_items
        have = np.searchsorted(ku, todo_u, "right") - np.searchsorted(ku, todo_u, "left")
        ok = have >= todo_c
        if ok.any():  # finished users leave the working set (trimmed to their count)
            fin = ok[np.searchsorted(todo_u, ku)]
            done.append(_trim(rng, keys[fin], todo_u[ok], todo_c[ok], have[ok], n_items))
            keys = keys[~fin]
        todo_u, todo_c = todo_u[~ok], todo_c[~ok]
        want = (todo_c - have[~ok]) * 2
    if todo_u.size:  # could not fill (too few items): keep what was drawn
        done.append(keys)
    return np.sort(np.concatenate(done)) if done else keys


def _trim(rng: np.random.Generator, keys: np.ndarray, users: np.ndarray, counts: np.ndarray,
          have: np.ndarray, n_items: int) -> np.ndarray:
    """Keep a random ``counts[j]`` of the sorted ``keys`` of each ``users[j]``."""
    if int(have.sum()) == int(counts.sum()):
        return keys
    order = np.lexsort((rng.random(keys.size), keys // n_items))
    rank = np.arange(keys.size) - np.repeat(np.cumsum(have) - have, have)
    return keys[order[rank < np.repeat(counts, have)]]


def _sample_heavy(rng: np.random.Generator, users: np.ndarray, counts: np.ndarray,
                  logw: np.ndarray, n_items: int, block_cells: int) -> np.ndarray:
    """Distinct pair keys for heavy users, without replacement (Gumbel top-k)."""
    out = []
    rows = max(1, block_cells // n_items)
    for s in range(0, users.size, rows):
        uu, cc = users[s : s + rows], counts[s : s + rows]
        kmax = int(cc.max())
        score = logw[None, :] + rng.gumbel(size=(uu.size, n_items))
        top = np.argpartition(-score, kmax - 1, axis=1)[:, :kmax]
        best = np.take_along_axis(score, top, 1)
        top = np.take_along_axis(top, np.argsort(-best, axis=1), 1)
        keep = np.arange(kmax)[None, :] < cc[:, None]
        out.append(np.sort((uu[:, None] * n_items + top)[keep]))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def ml25m_like(n_ratings: int = 25_000_000, *, n_users: int | None = None,
               n_items: int | None = None, n_factors: int = 16, noise: float = 0.75,
               item_exponent: float = 1.1, seed: int = 0,
               chunk_ratings: int = 2_000_000) -> ScaleData:
    r"""Ratings shaped like MovieLens 25M, ``n_ratings`` of them.

    Parameters
    ----------
    n_ratings : int
        Number of (distinct) ratings; users and items scale with it in ML-25M's ratios.
    n_users, n_items : int or None
        Override the scaled counts (small test sets: ML-25M's ratios leave too few items
        below about 500k ratings).
    n_factors : int
        Rank of the planted signal.
    noise : float
        :math:`\sigma` of the Gaussian noise (before rounding to half stars).
    item_exponent : float
        Item ``j`` in popularity order is drawn with weight :math:`(j + 20)^{-a}`.
    seed : int
    chunk_ratings : int
        Ratings generated at once; bounds the working memory.

    Returns
    -------
    ScaleData

    Raises
    ------
    ConfigError
        When ``n_ratings`` is too small to give every user a rating.
    """
    nu0, ni0, n0 = ML25M_SHAPE
    n_users = n_users or max(2, round(nu0 * n_ratings / n0))
    n_items = n_items or max(2, round(ni0 * n_ratings / n0))
    if n_ratings < n_users or n_ratings > n_users * n_items // 2:
        raise ConfigError(f"n_ratings={n_ratings} cannot be spread over {n_users} users and "
                          f"{n_items} items (at most half of a user's row is filled); pass "
                          "a larger n_ratings, or n_users and n_items")
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, n_users, n_items, n_ratings, min_count=20)
    pop = (np.arange(n_items) + 20.0) ** -float(item_exponent)
    item_of_rank = rng.permutation(n_items)
    cum = np.cumsum(pop)
    scale = 0.6 / n_factors**0.25
    P = rng.normal(0.0, scale, (n_users, n_factors)).astype(np.float32)
    Q = rng.normal(0.0, scale, (n_items, n_factors)).astype(np.float32)
    bu = rng.normal(0.0, 0.35, n_users).astype(np.float32)
    bi = rng.normal(0.0, 0.5, n_items).astype(np.float32)
    mean = 3.5
    n = int(counts.sum())
    users = np.empty(n, dtype=np.int64)
    items = np.empty(n, dtype=np.int64)
    ratings = np.empty(n, dtype=np.float32)
    ends = np.cumsum(counts)
    pos, u0 = 0, 0
    logw = np.log(pop)
    heavy = counts > max(8, n_items // 16)
    while u0 < n_users:
        u1 = int(np.searchsorted(ends, (ends[u0 - 1] if u0 else 0) + chunk_ratings, "right"))
        u1 = max(u1, u0 + 1)
        uu = np.arange(u0, u1)
        hv = heavy[u0:u1]
        keys = np.sort(np.concatenate([
            _sample_light(rng, uu[~hv], counts[u0:u1][~hv], cum, n_items),
            _sample_heavy(rng, uu[hv], counts[u0:u1][hv], logw, n_items, 1 << 22)]))
        cu, ci = keys // n_items, item_of_rank[keys % n_items]
        m = cu.size
        r = (mean + bu[cu] + bi[ci] + np.einsum("ij,ij->i", P[cu], Q[ci])
             + rng.normal(0.0, noise, m).astype(np.float32))
        ratings[pos : pos + m] = np.clip(np.round(r * 2.0) / 2.0, 0.5, 5.0)
        users[pos : pos + m] = cu
        items[pos : pos + m] = ci
        pos += m
        u0 = u1
    data = Interactions(users=users[:pos], items=items[:pos], ratings=ratings[:pos],
                        user_vocab=Vocabulary(np.arange(n_users)),
                        item_vocab=Vocabulary(np.arange(n_items)),
                        rating_range=(0.5, 5.0), name=f"ml25m-like-{n_ratings}")
    return ScaleData(data, P, Q, bu, bi, mean, noise)
