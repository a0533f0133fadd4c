"""Issue 14: BiasedMF's regularisation from the validation rows, the bias-baseline safety net,
the all-rows passes and a sigmoid range that follows the rating scale."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from collabkit.data.interactions import Interactions
from collabkit.errors import ModelFitWarning
from collabkit.models.baseline import BiasBaseline
from collabkit.models.biased_mf import BiasedMF
from collabkit.models.biased_mf._autoreg import WD_STEPS, wd_candidates
from collabkit.models.persist import load_model
from collabkit.testing.synthetic import planted_low_rank


@pytest.fixture(scope="module")
def stars() -> Interactions:
    """Planted rank-3 ratings rounded to 1-5 stars."""
    d = planted_low_rank(n_users=300, n_items=200, k=3, density=0.25, noise=0.5, seed=0).data
    r = np.clip(np.rint(d.ratings), 1, 5).astype(np.float32)
    return dataclasses.replace(d, ratings=r, rating_range=(1.0, 5.0))


def _noise_only(seed: int = 0) -> Interactions:
    """Ratings with no user-item signal, few per item: anything beyond biases overfits."""
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, 400, 3000), rng.integers(0, 1500, 3000)
    df = pd.DataFrame({"user": u, "item": i}).drop_duplicates()
    df["rating"] = np.clip(np.rint(3.5 + rng.normal(0, 1.0, len(df))), 1, 5)
    return Interactions.from_dataframe(df)


def test_issue14_candidates_follow_the_rating_variance() -> None:
    r = np.random.default_rng(0).normal(3.5, 1.25**0.5, 200_000)
    assert wd_candidates(r)[0] == pytest.approx(0.1, rel=0.02)  # the former default
    wide = wd_candidates(10 * r)  # ratings 10x wider: 100x the variance
    assert wide == pytest.approx([100 * c for c in wd_candidates(r)])
    assert len(wide) == len(WD_STEPS)


def test_issue14_wd_is_chosen_on_the_validation_rows(stars: Interactions) -> None:
    m = BiasedMF(epochs=3, random_state=0).fit(stars)
    tried = m.wd_tried_
    assert tried and all(np.isfinite(v) for _, v in tried)
    # the candidates come from the training rows' variance (the carve aside): close to all's
    assert [wd for wd, _ in tried] == pytest.approx(wd_candidates(stars.ratings)[: len(tried)],
                                                    rel=0.05)
    best = min(tried, key=lambda t: t[1])
    assert m.wd_ == best[0]
    # the search stopped at the first candidate that did not improve (or ran out)
    vals = [v for _, v in tried]
    assert all(a > b for a, b in zip(vals[:-2], vals[1:-1], strict=True))
    assert m.chosen_["wd"] == m.wd_ and m.chosen_["serving"] == "model"


def test_issue14_a_fixed_wd_is_used_as_given(stars: Interactions) -> None:
    m = BiasedMF(epochs=2, wd=0.05, random_state=0).fit(stars)
    assert m.wd_ == 0.05 and m.wd_tried_ == []


def test_issue14_the_safety_net_serves_the_baseline_when_the_model_loses() -> None:
    data = _noise_only()
    kw = {"wd": 0.0, "epochs": 20, "lr": 0.05, "random_state": 0}
    with pytest.warns(ModelFitWarning, match="serves the damped-bias baseline"):
        m = BiasedMF(**kw).fit(data)
    assert m.serving_ == "baseline"
    assert m.chosen_["baseline_valid_rmse"] < m.model_valid_rmse_
    assert m.valid_rmse_ == m.chosen_["baseline_valid_rmse"]  # what predict now gives
    users = data.user_vocab.ids(data.users[:500])
    items = data.item_vocab.ids(data.items[:500])
    base = BiasBaseline().fit(data).predict_ratings(users, items)[0]
    np.testing.assert_allclose(m.predict_ratings(users, items)[0], base, rtol=1e-6)
    top = m.recommend(users[:3], n=5, exclude_seen=False)
    ranked = BiasBaseline().fit(data).recommend(users[:3], n=5, exclude_seen=False)
    assert top["item"].tolist() == ranked["item"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelFitWarning)
        kept = BiasedMF(**kw, fallback=False).fit(data)
    assert kept.serving_ == "model"
    assert not np.allclose(kept.predict_ratings(users, items)[0], base)


def test_issue14_choice_and_serving_are_saved_with_the_model(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelFitWarning)
        m = BiasedMF(wd=0.0, epochs=20, lr=0.05, random_state=0).fit(_noise_only())
    back = load_model(m.save(str(tmp_path / "m")))
    assert back.chosen_ == m.chosen_ and back.serving_ == "baseline"
    users = m.user_vocab_.ids(np.arange(20))
    items = m.item_vocab_.ids(np.arange(20))
    np.testing.assert_array_equal(back.predict_ratings(users, items)[0],
                                  m.predict_ratings(users, items)[0])


def test_issue14_the_validation_rows_join_the_final_passes(stars: Interactions) -> None:
    m = BiasedMF(epochs=2, random_state=0).fit(stars)
    assert m.n_valid_ == round(0.1 * len(stars))
    assert m.n_final_pass_rows_ == len(stars)  # every row, the validation carve included
    given = BiasedMF(epochs=2, random_state=0).fit(stars, valid=stars.take(np.arange(50)))
    assert given.n_final_pass_rows_ == 0  # rows passed as valid= are not the model's to use


@pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")  # one epoch
@pytest.mark.parametrize("scale, expected", [((1.0, 5.0), (0.0, 5.5)),
                                             ((-10.0, 10.0), (-15.0, 12.5)),
                                             ((0.5, 4.0), (-0.375, 4.4375))])
def test_issue14_the_sigmoid_range_follows_the_rating_scale(stars, scale, expected) -> None:
    lo, hi = scale
    r = lo + (stars.ratings - 1.0) / 4.0 * (hi - lo)
    data = dataclasses.replace(stars, ratings=r.astype(np.float32), rating_range=scale)
    m = BiasedMF(epochs=1, wd=0.1, random_state=0).fit(data)
    assert m.module_.y_range == pytest.approx(expected)


def test_mixin_declarations_shadow_nothing() -> None:
    """issue 9: what AutoRegMixin and AdamWFoldIn read from their host is declared for mypy
    as bare annotations; none may become a class attribute that hides the host's own."""
    from collabkit.models._adamw import AdamWFoldIn
    from collabkit.models._torch import TorchRecommender
    from collabkit.models.base import Recommender
    from collabkit.models.biased_mf._autoreg import AutoRegMixin

    declared = {"_build_module", "_after_train", "_baseline_idx", "device_", "seed_",
                "global_mean_", "user_bias_base_", "item_bias_base_", "rating_range_",
                "n_factors", "n_valid_", "fit_seconds_", "valid_rmse_"}
    from collabkit.models._safety import SafetyNetMixin

    mixins = (AutoRegMixin, SafetyNetMixin)
    assert declared <= {n for c in mixins for n in c.__annotations__}
    assert not declared & {n for c in mixins for n in vars(c)}
    assert not {"batch_size", "_wd_value"} & set(vars(AdamWFoldIn))
    assert BiasedMF._baseline_idx is Recommender._baseline_idx
    assert BiasedMF._build_module is vars(BiasedMF)["_build_module"]
    assert BiasedMF._after_train is vars(BiasedMF)["_after_train"]
    assert TorchRecommender.adamw_reg_scale is AdamWFoldIn.adamw_reg_scale
    assert BiasedMF._wd_value is AutoRegMixin._wd_value
    assert BiasedMF(wd=0.3)._wd_value() == 0.3
