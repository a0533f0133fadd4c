"""SVDpp: known-answer recovery, persistence, scoring consistency, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models.persist import load_model
from collabkit.models.svdpp import SVDpp
from collabkit.recommend.foldin import fold_in_users
from collabkit.testing.synthetic import PlantedData, planted_low_rank

# little regularisation: the planted data has noise 0.1 and no outliers
FAST = {"n_factors": 3, "reg": 1e-3, "lr": 0.05, "epochs": 30, "batch_size": 2048}


@pytest.fixture(scope="module")
def planted() -> tuple[PlantedData, Interactions, Interactions]:
    """Planted rank-3 data (noise 0.1) split 90/10 into train and held-out rows."""
    p = planted_low_rank(n_users=300, n_items=200, k=3, density=0.2, noise=0.1, seed=0)
    perm = np.random.default_rng(0).permutation(len(p.data))
    n_test = len(p.data) // 10
    return p, p.data.take(perm[n_test:]), p.data.take(perm[:n_test])


@pytest.fixture(scope="module")
def fitted(planted: tuple[PlantedData, Interactions, Interactions]) -> SVDpp:
    return SVDpp(**FAST, random_state=0).fit(planted[1])


def _raw(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    return data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)


def test_recovers_planted_factors_near_the_noise_floor(fitted: SVDpp, planted) -> None:
    p, _, test = planted
    pred, fallback = fitted.predict_ratings(*_raw(test))
    assert not fallback.any()
    assert float(np.sqrt(np.mean((pred - test.ratings) ** 2))) < 1.25 * p.noise


def test_implicit_term_is_used(fitted: SVDpp) -> None:
    z = fitted.user_factors_ - fitted.module_.p.detach()
    assert float(z.abs().max()) > 0.0
    # z_u = |N(u)|^-1/2 sum of y_j over the items u rated, checked for user 0
    items = fitted.seen_indices_[fitted.seen_indptr_[0] : fitted.seen_indptr_[1]]
    y = fitted.module_.y.detach()[items]
    np.testing.assert_allclose(z[0].numpy(), (y.sum(0) / len(items) ** 0.5).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_save_load_gives_identical_predictions(fitted: SVDpp, planted, tmp_path) -> None:
    users, items = _raw(planted[2])
    loaded = load_model(fitted.save(str(tmp_path / "svdpp")))
    assert isinstance(loaded, SVDpp)
    np.testing.assert_array_equal(loaded.predict_ratings(users, items)[0],
                                  fitted.predict_ratings(users, items)[0])


def test_score_users_matches_predict_idx(fitted: SVDpp) -> None:
    u = np.array([0, 5, 17, 299])
    scores = fitted.score_users(u).double().numpy()
    n_items = len(fitted.item_vocab_)
    pairs = fitted._predict_idx(np.repeat(u, n_items), np.tile(np.arange(n_items), len(u)))
    np.testing.assert_allclose(scores, pairs.reshape(len(u), n_items), atol=1e-5)


@pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")  # 2 epochs, kept
def test_same_seed_same_model(planted) -> None:
    _, train, test = planted
    kw = {**FAST, "epochs": 2, "fallback": False}  # two epochs lose to the baseline
    a = SVDpp(**kw, random_state=3).fit(train).predict_ratings(*_raw(test))[0]
    b = SVDpp(**kw, random_state=3).fit(train).predict_ratings(*_raw(test))[0]
    c = SVDpp(**kw, random_state=4).fit(train).predict_ratings(*_raw(test))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_validation_history_is_recorded(planted) -> None:
    _, train, test = planted
    model = SVDpp(**{**FAST, "epochs": 3}, random_state=0).fit(train, valid=test)
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]
    assert all(h["valid_rmse"] > 0 for h in model.history_)


def test_recommend_excludes_seen_items(fitted: SVDpp) -> None:
    user = fitted.user_vocab_.ids([0])[0]
    recs = fitted.recommend(user, n=5)
    seen = set(fitted.item_vocab_.ids(
        fitted.seen_indices_[fitted.seen_indptr_[0] : fitted.seen_indptr_[1]]).tolist())
    assert len(recs) == 5 and not seen & set(recs["item"].tolist())


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"epochs": 0}, {"lr": 0.0},
                                 {"reg": -1.0}, {"reg_bias": float("nan")},
                                 {"batch_size": 0}, {"init_std": 0.0}, {"n_threads": 0}])
def test_bad_parameters_raise_config_error(planted, bad: dict) -> None:
    with pytest.raises(ConfigError):
        SVDpp(**bad).fit(planted[1])


def test_fold_in_of_a_trained_user_predicts_like_the_trained_user(fitted: SVDpp) -> None:
    """fold_in sees SVD++ as the linear model (p_u + z_u, q_i, b_u, b_i) and refits p_u + z_u."""
    user = fitted.user_vocab_.ids([0])[0]
    rows = slice(fitted.seen_indptr_[0], fitted.seen_indptr_[1])
    rated = dict(zip(fitted.item_vocab_.ids(fitted.seen_indices_[rows]).tolist(),
                     fitted.seen_ratings_[rows].tolist(), strict=True))
    items = fitted.item_vocab_.all_ids
    folded = fitted.fold_in(rated).predict(items)["prediction"].to_numpy()
    trained = fitted.predict_ratings(np.full(len(items), user), items)[0]
    assert np.corrcoef(folded, trained)[0, 1] > 0.9


# --------------------------------------------------------------------------- issue 9
def _rated(model: SVDpp, user: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense item indices and ratings of trained user ``user`` (dense index)."""
    s, e = model.seen_indptr_[user], model.seen_indptr_[user + 1]
    return model.seen_indices_[s:e], model.seen_ratings_[s:e].astype(np.float64)


@pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")  # 3 epochs, kept
def test_matched_fold_in_uses_svdpps_own_per_rating_l2(fitted: SVDpp) -> None:
    """issue 9: reg="matched" used an AdamW penalty with a made-up wd=0.1. SVD++ pays
    ``reg`` per rating on p_u and ``reg_bias`` on b_u, so for the effective vector
    v = p_u + z_u one row's problem is min sum_i (r_i - mu - b_i - q_i.v - b)^2
    + n (reg |v - z_u|^2 + reg_bias b^2), z_u = n^-1/2 sum of y_j: a known answer."""
    from collabkit.recommend.foldin import fold_in_user

    model = SVDpp(**{**FAST, "reg": 0.5, "reg_bias": 0.05, "epochs": 3}, clip=False,
                  fallback=False, random_state=0).fit(_train_of(fitted))
    idx, r = _rated(model, 3)
    q = model.item_factors_.double().numpy()[idx]
    bi = model.item_bias_.double().numpy()[idx]
    A = np.column_stack([q, np.ones(len(idx))])
    n, k = len(idx), q.shape[1]
    lam = n * np.diag(np.append(np.full(k, 0.5), 0.05))
    z = np.append(model.module_.y.detach().double().numpy()[idx].sum(0) / np.sqrt(n), 0.0)
    x = np.linalg.solve(A.T @ A + lam, A.T @ (r - bi - model.global_mean_) + lam @ z)
    fu = fold_in_user(model, dict(zip(model.item_vocab_.ids(idx).tolist(), r.tolist(),
                                      strict=True)), reg="matched", prior="zero")
    np.testing.assert_allclose(fu.vector, x[:k], atol=1e-5)
    assert fu.bias == pytest.approx(x[k], abs=1e-5)


def test_matched_fold_in_gives_back_converged_trained_users(planted) -> None:
    """With SVD++'s own objective, a trained user's training ratings fold back into their
    row once training has converged (was 0.1+ RMSE away with the AdamW stand-in)."""
    from collabkit.testing.contracts import _own_ratings

    model = SVDpp(n_factors=3, reg=0.05, reg_bias=0.01, lr=0.02, epochs=30,
                  random_state=0).fit(planted[0].data)
    folded = fold_in_users(model, _own_ratings(model, np.arange(20)), reg="matched")
    trained = model.score_users(model.user_vocab_.index(folded.users)).double().numpy()
    assert float(np.sqrt(np.mean((folded.scores() - trained) ** 2))) < 0.01


def _train_of(model: SVDpp) -> Interactions:
    import pandas as pd

    u = np.repeat(np.arange(len(model.user_vocab_)), np.diff(model.seen_indptr_))
    return Interactions.from_dataframe(pd.DataFrame({
        "user": model.user_vocab_.ids(u), "item": model.item_vocab_.ids(model.seen_indices_),
        "rating": model.seen_ratings_.astype(np.float64)}))


def test_fold_in_respects_clip_false(planted) -> None:
    """issue 9: fold-in clipped an SVDpp(clip=False) to the rating range anyway."""
    from collabkit.recommend.foldin import fold_in_user

    model = SVDpp(**{**FAST, "epochs": 3}, clip=False, random_state=0).fit(planted[1])
    lo, hi = model.rating_range_
    best = model.item_vocab_.ids(np.argsort(-model.item_bias_.numpy())[:15])
    fu = fold_in_user(model, dict.fromkeys(best.tolist(), hi), reg=1e-4)
    expect = (model.item_factors_.double().numpy() @ fu.vector + fu.bias
              + model.item_bias_.double().numpy() + model.global_mean_)
    np.testing.assert_allclose(fu.scores(), expect, atol=1e-6)
    assert fu.scores().max() > hi  # the unclipped model predicts past the range here
    clipped = SVDpp(**{**FAST, "epochs": 3}, random_state=0).fit(planted[1])
    assert fold_in_user(clipped, dict.fromkeys(best.tolist(), hi), reg=1e-4).scores().max() \
        <= hi


# issue 14: svdpp summed the implicit term of every user, over every rating, at every batch
def test_issue14_batches_sum_the_implicit_term_of_their_own_users_only(monkeypatch) -> None:
    from collabkit.models import svdpp

    rng = np.random.default_rng(0)
    n_users, per_user = 400, 5
    u = np.repeat(np.arange(n_users), per_user)
    i = np.concatenate([rng.choice(300, per_user, replace=False) for _ in range(n_users)])
    data = Interactions.from_dataframe(
        pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, len(u)).astype(float)}))
    full_products, bag_items = [], []
    real_full, real_bags = svdpp.SVDppModule.implicit, svdpp._Bags.implicit

    def count_full(self, F, Ft):  # type: ignore[no-untyped-def]
        full_products.append(1)
        return real_full(self, F, Ft)

    def count_bags(self, m, users):  # type: ignore[no-untyped-def]
        bag_items.append(int(self.counts[users].sum()))
        return real_bags(self, m, users)

    monkeypatch.setattr(svdpp.SVDppModule, "implicit", count_full)
    monkeypatch.setattr(svdpp._Bags, "implicit", count_bags)
    SVDpp(n_factors=2, epochs=2, batch_size=64, valid_frac=0.0, random_state=0).fit(data)
    assert not full_products  # no batch summed over every user
    assert len(bag_items) == 2 * -(-len(u) // 64)
    assert max(bag_items) <= 64 * per_user  # a batch reads its own users' items only


def test_issue14_bag_sums_equal_the_sparse_product(fitted: SVDpp) -> None:
    from collabkit.models.svdpp import _Bags

    m = fitted.module_
    bags = _Bags(fitted.seen_indptr_, fitted.seen_indices_, fitted.implicit_matrix_,
                 fitted.implicit_matrix_t_)
    users = torch.tensor([3, 0, 17, 250])
    got = bags.implicit(m, users).detach()
    want = (fitted.implicit_matrix_ @ m.y.detach())[users]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- issue 14
# svdpp scored below the damped-bias baseline on the sparse long-tail set (0.9999 vs 0.9712):
# it had no validation carve, no regularisation choice and no safety net.
def _long_tail_split() -> tuple[Interactions, pd.DataFrame]:
    from collabkit.testing.synthetic import long_tail

    df = long_tail(300, 3000, 5000, seed=0)
    perm = np.random.default_rng(0).permutation(len(df))
    cut = int(0.8 * len(df))
    return Interactions.from_dataframe(df.iloc[perm[:cut]]), df.iloc[perm[cut:]]


def _test_rmse(model, test: pd.DataFrame) -> float:  # type: ignore[no-untyped-def]
    pred, _ = model.predict_ratings(test.user.to_numpy(), test.item.to_numpy())
    return float(np.sqrt(np.mean((pred - test.rating.to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def long_tail_fits() -> tuple[SVDpp, SVDpp, Interactions, pd.DataFrame]:
    from collabkit.errors import ModelFitWarning

    train, test = _long_tail_split()
    with pytest.warns(ModelFitWarning, match="fallback=False keeps the model anyway"):
        plain = SVDpp(reg=0.1, fallback=False, random_state=0).fit(train)
    with pytest.warns(ModelFitWarning, match="serves the damped-bias baseline"):
        default = SVDpp(random_state=0).fit(train)
    return plain, default, train, test


def test_issue14_on_long_tail_data_plain_svdpp_loses_and_the_default_does_not(
        long_tail_fits) -> None:
    from collabkit.models.baseline import BiasBaseline

    plain, default, train, test = long_tail_fits
    assert plain.serving_ == "model"
    assert plain.model_valid_rmse_ > plain.baseline_valid_rmse_  # loses on validation
    bias = _test_rmse(BiasBaseline().fit(train), test)
    assert _test_rmse(plain, test) > bias + 0.01  # and on test (0.965 vs 0.946)
    assert default.serving_ == "baseline"
    assert _test_rmse(default, test) <= bias + 1e-12
    # the search tried at least two strengths and kept the best of them
    tried = default.reg_tried_
    assert len(tried) >= 2 and default.reg_ == min(tried, key=lambda t: t[1])[0]


def test_issue14_the_fallback_serves_exactly_the_baseline(long_tail_fits) -> None:
    """Known answer: the baseline's own predictions, rankings and tables, and the validation
    RMSE of the damped biases fitted to the carve's training rows."""
    from collabkit.models.base import damped_biases
    from collabkit.models.baseline import BiasBaseline
    from collabkit.seeds import derive_seed, numpy_rng
    from collabkit.train.validation import carve_validation

    _, m, train, test = long_tail_fits
    base = BiasBaseline().fit(train)
    users, items = test.user.to_numpy(), test.item.to_numpy()
    np.testing.assert_array_equal(m.predict_ratings(users, items)[0],
                                  base.predict_ratings(users, items)[0])
    who = train.user_vocab.ids(train.users[:4])
    assert (m.recommend(who, n=5)["item"].tolist()
            == base.recommend(who, n=5)["item"].tolist())
    t = m.factor_tables()
    assert float(t.user_factors.abs().max()) == 0.0 and float(t.item_factors.abs().max()) == 0.0
    u = m.user_vocab_.index(train.user_vocab.ids(train.users))
    i = m.item_vocab_.index(train.item_vocab.ids(train.items))
    carve = carve_validation(u, i, train.ratings, user_vocab=m.user_vocab_,
                             item_vocab=m.item_vocab_, valid=None, valid_frac=0.1,
                             rng=numpy_rng(derive_seed(m.seed_, "valid")))
    rows, (vu, vi, vr) = carve.train_rows, carve.valid
    r = train.ratings[rows].astype(np.float64)
    bu, bi = damped_biases(u[rows], i[rows], r, len(m.user_vocab_), len(m.item_vocab_),
                           float(r.mean()))
    want = np.sqrt(np.mean((np.clip(r.mean() + bu[vu] + bi[vi], 1, 5) - vr) ** 2))
    assert m.baseline_valid_rmse_ == pytest.approx(want, rel=1e-12)
    assert m.valid_rmse_ == m.baseline_valid_rmse_ and m.n_valid_ == len(vr) == 400
    assert m.n_final_pass_rows_ == 0  # the baseline is served: no model trained again


def test_issue14_reg_is_chosen_on_the_validation_rows_then_every_row_trains(planted) -> None:
    from collabkit.models._safety import strength_candidates
    from collabkit.models.svdpp import REG_POWER

    data = planted[0].data
    m = SVDpp(n_factors=3, lr=0.05, epochs=10, random_state=0).fit(data)
    assert m.serving_ == "model" and m.n_valid_ == round(0.1 * len(data))
    tried = [t[0] for t in m.reg_tried_]
    assert REG_POWER == 0.5  # candidates follow the ratings' standard deviation
    assert tried == pytest.approx(strength_candidates(data.ratings, 0.5)[: len(tried)],
                                  rel=0.05)
    assert m.reg_ == min(m.reg_tried_, key=lambda t: t[1])[0]
    assert m.n_final_pass_rows_ == len(data)  # trained again on the carve too
    assert m._reg_value() == m.reg_
    fixed = SVDpp(n_factors=3, lr=0.05, epochs=2, reg=0.02, valid_frac=0.0,
                  random_state=0).fit(data)
    assert fixed.reg_ == 0.02 and fixed.reg_tried_ == [] and fixed.n_valid_ == 0


@pytest.mark.parametrize("which", ["baseline", "model"])
def test_issue14_save_load_keeps_the_choice(which, long_tail_fits, planted, tmp_path) -> None:
    if which == "baseline":
        m = long_tail_fits[1]
    else:
        m = SVDpp(n_factors=3, lr=0.05, epochs=10, random_state=0).fit(planted[1])
    back = load_model(m.save(str(tmp_path / "m")))
    assert back.serving_ == which and back.chosen_ == m.chosen_
    assert back.chosen_["strength"] == "reg" and back.reg_ == m.reg_
    users = m.user_vocab_.ids(np.arange(20))
    items = m.item_vocab_.ids(np.arange(20))
    np.testing.assert_array_equal(back.predict_ratings(users, items)[0],
                                  m.predict_ratings(users, items)[0])
    extra = json.loads((tmp_path / "m" / "model.json").read_text())["extra"]
    assert extra["reg_used"] == m.reg_ and extra["serving"] == which
