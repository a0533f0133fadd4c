r"""What a fitted model learned: item biases, principal components, neighbours, explanations.

Everything here reads a fitted model and never changes it. BiasedMF (kind ``"dot"``) gives the
full picture. Other kinds degrade: models with item embeddings (kind ``"nn"``) get PCA,
neighbours and similarity-based explanations from those embeddings; every model gets the
damped baseline biases (``source="baseline"`` in the results).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError, DataError
from collabkit.models.capabilities import FactorModel, item_vectors
from collabkit.recommend.foldin import FoldedUser
from collabkit.recommend.onboarding import item_counts, item_factor_table

__all__ = [
    "item_biases",
    "PCAResult",
    "pca",
    "similar_items",
    "Explanation",
    "explain",
]


def _learned(model: Any) -> dict[str, Any] | None:
    """The four tables of a factor model as float64 numpy, or None for other models."""
    if not isinstance(model, FactorModel):
        return None
    t = model.factor_tables()

    def np64(x: Any) -> np.ndarray:
        return x.detach().cpu().double().numpy()

    return {"P": np64(t.user_factors), "Q": np64(t.item_factors), "bu": np64(t.user_bias),
            "bi": np64(t.item_bias), "g": t.global_bias, "y_range": t.y_range}


def _factors_or_raise(model: Any, what: str) -> np.ndarray:
    return item_vectors(model, what)


# --------------------------------------------------------------------------- item biases
def item_biases(model: Any, n: int = 10, *, min_ratings: int = 20) -> pd.DataFrame:
    """The items with the lowest and the highest learned bias.

    A high bias means an item is rated higher than its latent factors alone explain: people
    like it *more than its kind of movie* (the fast.ai chapter's reading); a low bias, less.
    Only items with at least ``min_ratings`` training ratings are listed, because the bias of
    a rarely rated item is mostly noise and weight decay.

    Factor models use their learned item bias (``source="learned"``; BiasedMF's is in logit
    units when it has a ``y_range``, BiasedALS's in rating units); other models fall back to
    the damped baseline bias ``item_bias_base_`` (``source="baseline"``, in rating units).

    Parameters
    ----------
    model : Recommender
        A fitted model.
    n : int
        Items at each end.
    min_ratings : int
        Fewest training ratings an item needs to be listed.

    Returns
    -------
    pandas.DataFrame
        ``end`` (``"lowest"`` / ``"highest"``), ``rank`` (1 = most extreme), ``item``,
        ``title``, ``bias``, ``n_ratings``, ``damped_mean``, ``source``; lowest first.

    Raises
    ------
    ConfigError
        If no item has ``min_ratings`` ratings.
    """
    counts = item_counts(model)
    learned = _learned(model)
    bias, source = ((learned["bi"], "learned") if learned is not None
                    else (np.asarray(model.item_bias_base_, dtype=np.float64), "baseline"))
    cand = np.flatnonzero(counts >= min_ratings)
    if cand.size == 0:
        raise ConfigError(f"no item has min_ratings={min_ratings} training ratings (the most "
                          f"rated has {int(counts.max())}); lower min_ratings")
    order = cand[np.lexsort((cand, bias[cand]))]
    k = min(int(n), len(order))
    frames = []
    for end, picks in (("lowest", order[:k]), ("highest", order[::-1][:k])):
        raw = model.item_vocab_.ids(picks)
        frames.append(pd.DataFrame({
            "end": end, "rank": np.arange(1, len(picks) + 1), "item": raw,
            "title": model.titles(raw), "bias": bias[picks], "n_ratings": counts[picks],
            "damped_mean": model.global_mean_ + model.item_bias_base_[picks],
            "source": source}))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- PCA
@dataclass(frozen=True)
class PCAResult:
    """Principal components of the item factors (see :func:`pca`).

    Attributes
    ----------
    components : numpy.ndarray
        ``(n_components, k)`` unit directions in factor space.
    explained_variance_ratio : numpy.ndarray
        Share of the total variance of the (centred) factors along each component.
    coords : pandas.DataFrame
        One row per item used: ``item``, ``title``, ``n_ratings``, ``pc1`` … ``pcN``.
    extremes : pandas.DataFrame
        ``component`` (1-based), ``end`` (``"low"``/``"high"``), ``rank``, ``item``,
        ``title``, ``coord``: the items at both ends of each component.
    """

    components: np.ndarray = field(repr=False)
    explained_variance_ratio: np.ndarray
    coords: pd.DataFrame = field(repr=False)
    extremes: pd.DataFrame = field(repr=False)

    def titles_at(self, component: int, end: Literal["low", "high"]) -> list[str]:
        """Titles (or ids where there is no title) at one end of a 1-based component."""
        e = self.extremes
        rows = e[(e["component"] == component) & (e["end"] == end)]
        if rows.empty:
            raise ConfigError(f"component must be in 1..{len(self.components)}, got {component}")
        return [str(t) if t is not None else str(i) for t, i in zip(rows["title"], rows["item"],
                                                                     strict=True)]


def pca(model: Any, n_components: int = 3, *, min_ratings: int = 20, max_items: int = 1000,
        n_extreme: int = 10) -> PCAResult:
    r"""PCA of the item factors of the most-rated items, by numpy SVD (no scikit-learn).

    The factors :math:`Q` of the ``max_items`` most-rated items with at least
    ``min_ratings`` ratings are centred, :math:`Q - \bar Q = U S V^\top`, and the items are
    placed at :math:`U S` (their coordinates along the rows of :math:`V^\top`). The sign of
    each component is fixed so that the most popular item of the pool has a non-negative
    coordinate, so results are stable across runs of the same model.

    Parameters
    ----------
    model : BiasedMF or MLPRecommender
    n_components : int
        Components to keep (at most the factor dimension).
    min_ratings, max_items : int
        Which items enter: fastai's chapter uses the 1,000 most rated.
    n_extreme : int
        Items listed at each end of each component.

    Returns
    -------
    PCAResult

    Raises
    ------
    ConfigError
        If the model has no item factors, ``n_components`` is out of range, or fewer than
        two items qualify.
    """
    factors = _factors_or_raise(model, "pca")
    counts = item_counts(model)
    cand = np.flatnonzero(counts >= min_ratings)
    cand = cand[np.lexsort((cand, -counts[cand]))][: int(max_items)]
    if cand.size < 2:
        raise ConfigError(f"only {cand.size} items have min_ratings={min_ratings} ratings; "
                          "PCA needs at least 2, lower min_ratings")
    limit = min(factors.shape[1], cand.size)
    if not 1 <= int(n_components) <= limit:
        raise ConfigError(f"n_components must be in 1..{limit}, got {n_components}")
    x = factors[cand] - factors[cand].mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    nc = int(n_components)
    coords = u[:, :nc] * s[:nc]
    signs = np.where(coords[0] < 0, -1.0, 1.0)  # cand[0] is the most rated item
    coords, vt = coords * signs, vt[:nc] * signs[:, None]
    ratio = s[:nc] ** 2 / max(float((s**2).sum()), 1e-300)
    raw = model.item_vocab_.ids(cand)
    titles = model.titles(raw)
    table = pd.DataFrame({"item": raw, "title": titles, "n_ratings": counts[cand]})
    for c in range(nc):
        table[f"pc{c + 1}"] = coords[:, c]
    rows = []
    k = min(int(n_extreme), cand.size)
    for c in range(nc):
        order = np.argsort(coords[:, c], kind="stable")
        for end, picks in (("low", order[:k]), ("high", order[::-1][:k])):
            for r, j in enumerate(picks, start=1):
                rows.append((c + 1, end, r, raw[j], titles[j], float(coords[j, c])))
    extremes = pd.DataFrame(rows, columns=["component", "end", "rank", "item", "title",
                                           "coord"])
    return PCAResult(vt, ratio, table, extremes)


# --------------------------------------------------------------------------- neighbours
def similar_items(model: Any, item: Any, n: int = 10, *, min_ratings: int = 0) -> pd.DataFrame:
    r"""The ``n`` items whose factors point most nearly the same way as ``item``'s.

    Similarity is the cosine :math:`q_i^\top q_j / (\lVert q_i\rVert \lVert q_j\rVert)` of the
    item factors (embeddings for kind ``"nn"``); the item itself is left out.

    Parameters
    ----------
    model : BiasedMF or MLPRecommender
    item : raw item id
    n : int
    min_ratings : int
        Only list items with at least this many training ratings.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``item``, ``title``, ``similarity``, ``n_ratings``.

    Raises
    ------
    UnknownIdError
        If ``item`` is not in the model (the message names it and the id type expected).
    ConfigError
        If the model has no item factors.
    """
    factors = _factors_or_raise(model, "similar_items")
    j = int(model.item_vocab_.index_strict([item], what="item")[0])
    counts = item_counts(model)
    norms = np.linalg.norm(factors, axis=1)
    sim = factors @ factors[j] / np.maximum(norms * norms[j], 1e-12)
    sim[j] = -np.inf
    sim[counts < min_ratings] = -np.inf
    order = np.lexsort((np.arange(len(sim)), -sim))
    order = order[np.isfinite(sim[order])][: int(n)]
    raw = model.item_vocab_.ids(order)
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "item": raw,
                         "title": model.titles(raw), "similarity": sim[order],
                         "n_ratings": counts[order]})


# --------------------------------------------------------------------------- explanations
@dataclass(frozen=True)
class Explanation:
    r"""Why a model predicts what it does for one (user, item) pair.

    For BiasedMF the prediction decomposes exactly as
    :math:`\hat r = \operatorname{sigmoid\_range}(g + b_u + b_i + p_u^\top q_i)`; ``raw`` is the
    sum inside. For BiasedALS, :math:`\hat r` is that sum (with :math:`g` the global mean),
    clipped to the rating range. For other kinds the bias terms are the damped baseline ones
    (``source="baseline"``) and ``dot``/``raw`` are None.

    Attributes
    ----------
    user, item : raw ids (``user`` is ``"folded"`` for a :class:`FoldedUser`)
    title : str or None
    prediction : float
    global_bias, user_bias, item_bias : float
    dot : float or None
    raw : float or None
    y_range : tuple of float or None
    source : str
        ``"learned"`` or ``"baseline"``.
    contributions : pandas.DataFrame
        The user's rated items, most supportive first: ``item``, ``title``, ``rating``,
        ``deviation``, ``similarity``, ``weight`` (see :func:`explain`).
    ratings_source : str
        ``"ratings"`` when real ratings were available, ``"predicted"`` when the model's fit
        of the training items stood in for them.
    """

    user: Any
    item: Any
    title: str | None
    prediction: float
    global_bias: float
    user_bias: float
    item_bias: float
    dot: float | None
    raw: float | None
    y_range: tuple[float, float] | None
    source: str
    contributions: pd.DataFrame = field(repr=False)
    ratings_source: str = "ratings"

    def __str__(self) -> str:
        name = self.title or repr(self.item)
        lines = [f"user {self.user!r} x {name}: predicted {self.prediction:.2f}"]
        if self.raw is not None:
            terms = (f"{self.global_bias:+.3f} global {self.user_bias:+.3f} user "
                     f"{self.item_bias:+.3f} item {self.dot:+.3f} factors = {self.raw:+.3f}")
            if self.y_range is None:
                lines.append(f"  = {terms} (clipped to the rating range)")
            else:
                lines.append(f"  = sigmoid_range({terms}, {self.y_range[0]:.2f}, "
                             f"{self.y_range[1]:.2f})")
        else:
            lines.append(f"  baseline: {self.global_bias:.3f} global {self.user_bias:+.3f} user "
                         f"{self.item_bias:+.3f} item ({self.source})")
        top = self.contributions.head(5)
        if len(top):
            how = "their ratings" if self.ratings_source == "ratings" else \
                "the model's fit of their ratings"
            lines.append(f"  most supportive rated items ({how}):")
            verb = "rated" if self.ratings_source == "ratings" else "fitted"
            for row in top.itertuples():
                label = row.title or repr(row.item)
                lines.append(f"    {label}: {verb} {row.rating:.1f} ({row.deviation:+.2f} vs "
                             f"expected), similarity {row.similarity:+.2f}")
        return "\n".join(lines)


def explain(model: Any, user: Any, item: Any, *, data: Any = None) -> Explanation:
    r"""Break one prediction into its terms and the user's ratings that support it.

    The bias terms and the dot product are read off the model. The *contributions* rank the
    items the user rated in training by

    .. math::

        w_j = \cos(q_j, q_i)\,\big(r_{uj} - \hat b_{uj}\big), \qquad
        \hat b_{uj} = \mu + b^{base}_u + b^{base}_j,

    the cosine similarity of a rated item's factors to the target's, times how much more (or
    less) the user liked it than the damped baseline expected. A large positive :math:`w_j`
    is a similar item the user liked more than expected, which pushes the prediction up; a
    negative one, a similar item they disliked (or an opposite one they liked).

    Parameters
    ----------
    model : Recommender
        A fitted model.
    user : raw user id or FoldedUser
        A user seen in training, or a folded-in new user (whose own ratings are then used).
    item : raw item id
    data : Interactions or pandas.DataFrame, optional
        The training ratings (columns ``user``, ``item``, ``rating`` for a DataFrame). The
        model stores which items a user rated but not the ratings, so without ``data`` the
        model's fitted prediction of each rated item stands in for the rating
        (``ratings_source="predicted"``).

    Returns
    -------
    Explanation

    Raises
    ------
    UnknownIdError
        If the user or the item is not in the model.
    """
    model.check_fitted()
    i = int(model.item_vocab_.index_strict([item], what="item")[0])
    learned = _learned(model)
    if isinstance(user, FoldedUser):
        label, u = "folded", -1
        rated_idx = model.item_vocab_.index(user.rated_items)
        keep = rated_idx >= 0
        rated_idx, ratings, ratings_source = rated_idx[keep], user.rated_values[keep], "ratings"
        ub_base = (float(np.sum(ratings - model.global_mean_ - model.item_bias_base_[rated_idx]))
                   / (len(rated_idx) + 5.0))
        prediction = float(user.scores()[i])
    else:
        label = user
        u = int(model.user_vocab_.index_strict([user], what="user")[0])
        rated_idx = model.seen_indices_[model.seen_indptr_[u]: model.seen_indptr_[u + 1]]
        ratings, ratings_source = _user_ratings(model, u, rated_idx, data)
        ub_base = float(model.user_bias_base_[u])
        prediction = float(model._predict_idx(np.array([u]), np.array([i]))[0])
    if learned is not None:
        pu, bu = ((user.vector, user.bias) if isinstance(user, FoldedUser)
                  else (learned["P"][u], learned["bu"][u]))
        g, bi, q = learned["g"], learned["bi"][i], learned["Q"][i]
        dot = float(pu @ q)
        terms = (g, float(bu), float(bi), dot, g + float(bu) + float(bi) + dot,
                 learned["y_range"], "learned")
    else:
        terms = (float(model.global_mean_), ub_base, float(model.item_bias_base_[i]), None,
                 None, None, "baseline")
    factors = item_factor_table(model)
    expected = model.global_mean_ + ub_base + model.item_bias_base_[rated_idx]
    if factors is None:
        sim = np.zeros(len(rated_idx))
    else:
        fq = factors[rated_idx]
        sim = fq @ factors[i] / np.maximum(np.linalg.norm(fq, axis=1)
                                           * np.linalg.norm(factors[i]), 1e-12)
    dev = ratings - expected
    raw = model.item_vocab_.ids(rated_idx)
    contrib = pd.DataFrame({"item": raw, "title": model.titles(raw), "rating": ratings,
                            "deviation": dev, "similarity": sim, "weight": sim * dev})
    contrib = contrib[raw != item].sort_values("weight", ascending=False, kind="stable")
    return Explanation(label, item, model.titles(np.array([item]))[0], prediction, *terms,
                       contributions=contrib.reset_index(drop=True),
                       ratings_source=ratings_source)


def _user_ratings(model: Any, u: int, rated_idx: np.ndarray,
                  data: Any) -> tuple[np.ndarray, str]:
    """The user's training ratings of ``rated_idx``: from ``data`` when given, else the ratings
    stored in the model (``seen_ratings_``), else the model's fit."""
    if data is None:
        stored = model.seen_ratings_
        if stored is None:
            return model._predict_idx(np.full(len(rated_idx), u), rated_idx), "predicted"
        start, end = model.seen_indptr_[u], model.seen_indptr_[u + 1]
        items, ratings = model.seen_indices_[start:end], stored[start:end]
        pos = np.clip(np.searchsorted(items, rated_idx), 0, max(len(items) - 1, 0))
        found = (len(items) > 0) & (items[pos] == rated_idx)
        got = np.where(found, ratings[pos], np.nan).astype(np.float64)
        if not found.all():
            got[~found] = model._predict_idx(np.full(int((~found).sum()), u),
                                             rated_idx[~found])
        return got, "ratings"
    if hasattr(data, "to_dataframe"):
        data = data.to_dataframe()
    if not isinstance(data, pd.DataFrame) or not {"user", "item", "rating"} <= set(data.columns):
        raise DataError("data must be the training Interactions or a DataFrame with columns "
                        "'user', 'item', 'rating'")
    raw_user = model.user_vocab_.ids([u])[0]
    rows = data[data["user"] == raw_user]
    lookup = pd.Series(rows["rating"].to_numpy(np.float64),
                       index=model.item_vocab_.index(rows["item"].to_numpy()))
    lookup = lookup[~lookup.index.duplicated(keep="last")]
    got = lookup.reindex(rated_idx).to_numpy()
    missing = np.isnan(got)
    if missing.any():  # rows carved out for validation, or a different data set
        got[missing] = model._predict_idx(np.full(int(missing.sum()), u), rated_idx[missing])
    return got, "ratings"
