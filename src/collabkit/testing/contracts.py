"""Contract tests every collabkit model kind gets for free (LensKit's and implicit's habit).

The tests here are parametrised over :func:`collabkit.models.registry.kinds`, and the
capability contracts over the kinds that declare the capability
(:mod:`collabkit.models.capabilities`), so a new kind is covered by adding its registry line.
A test module runs them with::

    from collabkit.testing.contracts import *  # noqa: F403

This module needs pytest (a development dependency); nothing else in collabkit imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from collabkit.errors import NotSupportedError
from collabkit.models import registry
from collabkit.models.base import Recommender
from collabkit.models.capabilities import EmbeddingModel, FactorModel, can_fold_in
from collabkit.models.persist import load_model
from collabkit.recommend.foldin import fold_in_users
from collabkit.testing.synthetic import PlantedData, planted_low_rank

__all__ = [
    "FAST",
    "planted",
    "fitted",
    "test_predictions_finite_and_consistent",
    "test_unknown_ids_fall_back_and_are_flagged",
    "test_recommend_shape_and_exclusions",
    "test_save_load_identical",
    "test_fold_in_reproduces_trained_users",
    "test_fold_in_refused_clearly_without_the_capability",
]

#: fast settings per kind for the contract (kinds not listed run with their defaults). "dot"
#: carves no validation rows: they would be folded in but are not in refit_users' user pass;
#: nor does "svdpp": its few epochs would lose to the bias baseline, which it would then serve.
FAST: dict[str, dict[str, Any]] = {
    "dot": {"epochs": 3, "valid_frac": 0.0}, "nn": {"epochs": 2}, "hybrid": {"epochs": 2},
    "bpmf": {"n_samples": 10, "burn_in": 5}, "svdpp": {"epochs": 3, "valid_frac": 0.0},
    "ensemble": {"members": ("dot", "als"), "member_params": {"dot": {"epochs": 2}}}}


def _fit_kind(kind: str, data: Any) -> Recommender:
    cls = registry.get(kind)
    names = cls._param_names()
    params = {k: v for k, v in FAST.get(kind, {}).items() if k in names}
    if "random_state" in names:
        params["random_state"] = 0
    if "device" in names:
        params["device"] = "cpu"
    return cls(**params).fit(data)


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return planted_low_rank(n_users=60, n_items=40, k=2, density=0.3, seed=3)


@pytest.fixture(scope="module", params=registry.kinds())
def fitted(request: pytest.FixtureRequest, planted: PlantedData) -> Recommender:
    return _fit_kind(request.param, planted.data)


# --------------------------------------------------------------------------- every kind
def test_predictions_finite_and_consistent(fitted: Recommender, planted: PlantedData) -> None:
    data = planted.data
    users = data.user_vocab.ids(data.users[:50])
    items = data.item_vocab.ids(data.items[:50])
    df = fitted.predict(users, items)
    assert list(df.columns) == ["user", "item", "prediction", "fallback", "title"]
    assert np.isfinite(df["prediction"]).all() and not df["fallback"].any()
    # the batched all-items scores agree with pairwise predictions
    u = fitted.user_vocab_.index(users[:5])
    scores = fitted.score_users(u).double().cpu().numpy()
    i = fitted.item_vocab_.index(items[:5])
    np.testing.assert_allclose(scores[np.arange(5), i], df["prediction"][:5], rtol=1e-4,
                               atol=1e-4)


def test_unknown_ids_fall_back_and_are_flagged(fitted: Recommender) -> None:
    df = fitted.predict([999_999, 0], [0, 999_999])
    assert df["fallback"].tolist() == [True, True]
    assert np.isfinite(df["prediction"]).all()
    rec = fitted.recommend(999_999, n=3)
    assert rec["tier"].unique().tolist() == ["baseline"] and len(rec) == 3


def test_recommend_shape_and_exclusions(fitted: Recommender) -> None:
    user = fitted.user_vocab_.ids([0])[0]
    rec = fitted.recommend([user], n=5)
    assert rec["rank"].tolist() == [1, 2, 3, 4, 5]
    assert rec["score"].is_monotonic_decreasing
    start, end = fitted.seen_indptr_[0], fitted.seen_indptr_[1]
    seen = set(fitted.item_vocab_.ids(fitted.seen_indices_[start:end]).tolist())
    assert not seen & set(rec["item"].tolist())
    cands = fitted.item_vocab_.ids([0, 1, 2]).tolist()
    rec2 = fitted.recommend(user, n=10, exclude_seen=False, candidates=cands,
                            exclude=[cands[0]])
    assert set(rec2["item"]) <= set(cands[1:])
    both = fitted.recommend([user, user], n=2)
    assert len(both) == 4  # same long shape for one user or many


def test_save_load_identical(fitted: Recommender, planted: PlantedData, tmp_path: Any) -> None:
    path = fitted.save(str(tmp_path / "m"))
    back = load_model(path)
    assert type(back) is type(fitted)
    data = planted.data
    users, items = data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)
    np.testing.assert_array_equal(back.predict_ratings(users, items)[0],
                                  fitted.predict_ratings(users, items)[0])
    user = users[0]
    assert back.recommend(user, n=5).equals(fitted.recommend(user, n=5))


# --------------------------------------------------------------------------- fold-in
def _own_ratings(model: Recommender, users: np.ndarray) -> Any:
    """The training ratings of dense users ``users`` as a long frame keyed by raw user id."""
    import pandas as pd

    assert model.seen_ratings_ is not None, "a fitted model keeps its training ratings"
    frames = []
    for u in users:
        start, end = model.seen_indptr_[u], model.seen_indptr_[u + 1]
        frames.append(pd.DataFrame({
            "user": model.user_vocab_.ids([u])[0],
            "item": model.item_vocab_.ids(model.seen_indices_[start:end]),
            "rating": np.asarray(model.seen_ratings_[start:end], dtype=np.float64)}))
    return pd.concat(frames, ignore_index=True)


def test_fold_in_reproduces_trained_users(fitted: Recommender) -> None:
    """Folding a trained user's own training ratings back in gives back their predictions,
    within the tolerance the kind declares (``fold_in_exactness``, with its reason)."""
    if not can_fold_in(fitted):
        pytest.skip(f"kind {fitted.kind!r} has no fold-in")
    assert isinstance(fitted, FactorModel | EmbeddingModel)
    exact = fitted.fold_in_exactness
    users = np.arange(min(10, len(fitted.user_vocab_)))
    reg: Any = exact.reg if isinstance(fitted, FactorModel) else "population"
    folded = fold_in_users(fitted, _own_ratings(fitted, users), reg=reg)
    trained = fitted.score_users(fitted.user_vocab_.index(folded.users)).double().cpu().numpy()
    gap = float(np.sqrt(np.mean((folded.scores() - trained) ** 2)))
    assert gap < exact.rmse, (f"kind {fitted.kind!r}: folded users are {gap:.4f} RMSE from "
                              f"their trained rows; declared {exact.rmse} ({exact.reason})")


def test_fold_in_refused_clearly_without_the_capability(fitted: Recommender) -> None:
    if can_fold_in(fitted):
        pytest.skip(f"kind {fitted.kind!r} folds in")
    if type(fitted).fold_in is not Recommender.fold_in:
        pytest.skip(f"kind {fitted.kind!r} folds in by its own method (implicit feedback: "
                    "interactions, not ratings; tested with its family)")
    item = fitted.item_vocab_.ids([0])[0]
    with pytest.raises(NotSupportedError, match=f"kind {fitted.kind!r}"):
        fitted.fold_in({item: 4.0})
