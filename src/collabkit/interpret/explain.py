"""Why the model predicts a rating: bias and factor contributions, per rated item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import DataError
from collabkit.interpret.biases import _learned
from collabkit.recommend.foldin import FoldedUser
from collabkit.recommend.onboarding import item_factor_table


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
                label = str(row.title) if row.title else repr(row.item)
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
    terms: tuple[float, float, float, float | None, float | None, Any, str]
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
    g_, bu_, bi_, dot_, raw_, y_range, source = terms
    return Explanation(label, item, model.titles(np.array([item]))[0], prediction, g_, bu_, bi_,
                       dot_, raw_, y_range, source, contributions=contrib.reset_index(drop=True),
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
