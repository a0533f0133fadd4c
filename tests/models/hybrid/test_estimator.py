"""HybridMF: cold items and users scored from side features, time term, persistence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError, FieldError
from collabkit.models.biased_mf._estimator import BiasedMF
from collabkit.models.hybrid._estimator import HybridMF
from collabkit.models.persist import load_model, save_model

YEAR = 365.2425 * 86400.0
N_OCC, N_GENRE = 4, 4


@dataclass(frozen=True)
class GenreWorld:
    """Ratings that depend only on the user's occupation and the item's genre."""

    data: Interactions
    occ: np.ndarray  # occupation of every user id 0..n_users-1
    genre: np.ndarray  # genre of every item id 0..n_items-1
    table: np.ndarray  # (N_OCC, N_GENRE) mean rating of each occupation x genre
    warm_users: int
    warm_items: int

    def truth(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.table[self.occ[users], self.genre[items]]


def genre_world(n_users: int = 140, n_items: int = 75, warm_users: int = 120,
                warm_items: int = 60, density: float = 0.5, noise: float = 0.1,
                seed: int = 0) -> GenreWorld:
    r"""``r = T[occ(u), genre(i)] + noise``; users >= warm_users / items >= warm_items are
    cold (metadata only, no ratings)."""
    rng = np.random.default_rng(seed)
    occ = np.arange(n_users) % N_OCC
    genre = np.arange(n_items) % N_GENRE
    table = 3.0 + rng.uniform(-1.2, 1.2, (N_OCC, N_GENRE))
    mask = rng.random((warm_users, warm_items)) < density
    u, i = np.nonzero(mask)
    r = table[occ[u], genre[i]] + rng.normal(0, noise, u.size)
    ts = ((2000.0 - 1970 + rng.random(u.size)) * YEAR).astype(np.int64)
    df = pd.DataFrame({"user": u, "item": i, "rating": r.astype(np.float32), "timestamp": ts})
    item_meta = pd.DataFrame({"title": [f"t{k}" for k in range(n_items)],
                              "genres": [f"G{g}" for g in genre],
                              "year": pd.array(1980 + np.arange(n_items) % 20, dtype="Int64")},
                             index=pd.Index(np.arange(n_items), name="item"))
    user_meta = pd.DataFrame({"occupation": [f"o{o}" for o in occ]},
                             index=pd.Index(np.arange(n_users), name="user"))
    data = Interactions.from_dataframe(df, item_meta=item_meta, user_meta=user_meta,
                                       rating_range=(1.0, 5.0), name="genre-world")
    return GenreWorld(data, occ, genre, table, warm_users, warm_items)


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def world() -> GenreWorld:
    return genre_world()


@pytest.fixture(scope="module")
def hybrid(world: GenreWorld) -> HybridMF:
    return HybridMF(n_factors=8, epochs=20, lr=2e-2, wd=0.05, batch_size=128, valid_frac=0.0,
                    device="cpu", random_state=0).fit(world.data)


def test_cold_item_predicted_from_its_genre_but_not_by_plain_mf(world: GenreWorld,
                                                                 hybrid: HybridMF) -> None:
    users = np.repeat(np.arange(world.warm_users), 75 - world.warm_items)
    items = np.tile(np.arange(world.warm_items, 75), world.warm_users)
    truth = world.truth(users, items)
    pred, fb = hybrid.predict_ratings(users, items)
    assert not fb.any()  # scored by the model from the genre, not by the baseline
    mf = BiasedMF(n_factors=8, epochs=20, lr=2e-2, wd=0.05, batch_size=128, valid_frac=0.0,
                  device="cpu", random_state=0).fit(world.data)
    mf_pred, mf_fb = mf.predict_ratings(users, items)
    assert mf_fb.all()
    assert _rmse(pred, truth) < 0.2
    assert _rmse(mf_pred, truth) > 2.5 * _rmse(pred, truth)


def test_cold_user_predicted_from_demographics(world: GenreWorld, hybrid: HybridMF) -> None:
    users = np.repeat(np.arange(world.warm_users, 140), world.warm_items)
    items = np.tile(np.arange(world.warm_items), 140 - world.warm_users)
    pred, fb = hybrid.predict_ratings(users, items)
    assert not fb.any()
    assert _rmse(pred, world.truth(users, items)) < 0.2


def test_unknown_ids_without_features_fall_back(hybrid: HybridMF) -> None:
    pred, fb = hybrid.predict_ratings([0, 10_000], [10_000, 0])
    assert fb.tolist() == [True, True]
    np.testing.assert_allclose(pred, hybrid._baseline_idx(np.array([0, -1]),
                                                          np.array([-1, 0])))


def test_score_users_equals_predict_idx_on_all_pairs(hybrid: HybridMF) -> None:
    nu, ni = len(hybrid.user_vocab_), len(hybrid.item_vocab_)
    u, i = np.repeat(np.arange(nu), ni), np.tile(np.arange(ni), nu)
    grid = hybrid.score_users(np.arange(nu)).numpy()
    np.testing.assert_allclose(grid.ravel(), hybrid._predict_idx(u, i), atol=1e-5)


def test_save_load_round_trip_identical(tmp_path, world: GenreWorld, hybrid: HybridMF) -> None:
    users = np.array([0, 5, 130, 131, 0, 139])
    items = np.array([0, 70, 3, 71, 74, 74])  # warm, cold item, cold user, both cold
    ts = np.full(6, (2000.5 - 1970) * YEAR)
    loaded = load_model(save_model(hybrid, tmp_path / "m"))
    assert isinstance(loaded, HybridMF)
    for args in ((users, items), (users, items, ts)):
        a, fa = hybrid.predict_ratings(*args)
        b, fb = loaded.predict_ratings(*args)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(fa, fb)
    pd.testing.assert_frame_equal(hybrid.recommend([0, 3], n=5), loaded.recommend([0, 3], n=5))


def test_register_items_on_a_saved_model(tmp_path, world: GenreWorld) -> None:
    data = world.data
    warm_only = Interactions.from_dataframe(
        data.to_dataframe(), item_meta=data.item_meta.loc[: world.warm_items - 1],
        user_meta=data.user_meta, rating_range=(1.0, 5.0))
    model = HybridMF(n_factors=8, epochs=20, lr=2e-2, wd=0.05, batch_size=128, valid_frac=0.0,
                     device="cpu", random_state=0).fit(warm_only)
    loaded = load_model(save_model(model, tmp_path / "m"))
    _, fb = loaded.predict_ratings([1], [70])
    assert fb.all()  # item 70 is unknown and has no features yet
    loaded.register_items(data.item_meta.loc[[70, 71]])
    users = np.arange(world.warm_users)
    pred, fb = loaded.predict_ratings(users, np.full(users.size, 70))
    assert not fb.any()
    assert _rmse(pred, world.truth(users, np.full(users.size, 70))) < 0.2
    with pytest.raises(DataError, match="DataFrame"):
        loaded.register_items([70])  # type: ignore[arg-type]


def test_time_term_learns_a_trend() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    years = 1998.0 + 4.0 * rng.random(n)
    df = pd.DataFrame({"user": rng.integers(0, 50, n), "item": rng.integers(0, 40, n),
                       "rating": (3.0 + 0.5 * (years - 2000.0)).astype(np.float32),
                       "timestamp": ((years - 1970) * YEAR).astype(np.int64)})
    df = df.drop_duplicates(["user", "item"])
    meta = pd.DataFrame({"year": pd.array([1990] * 40, dtype="Int64")},
                        index=pd.Index(np.arange(40), name="item"))
    data = Interactions.from_dataframe(df, item_meta=meta, rating_range=(1.0, 5.0))
    model = HybridMF(n_factors=4, features=("time",), epochs=15, lr=2e-2, wd=0.01,
                     batch_size=128, valid_frac=0.0, device="cpu", random_state=0).fit(data)
    at = np.array([1998.5, 2001.5])
    pred, _ = model.predict_ratings([0, 0], [0, 0], (at - 1970) * YEAR)
    np.testing.assert_allclose(pred, [2.25, 3.75], atol=0.15)
    no_ts, _ = model.predict_ratings([0], [0])
    assert no_ts[0] == pytest.approx(3.0, abs=0.15)  # the mean training time
    with pytest.raises(DataError, match="one timestamp per pair"):
        model.predict_ratings([0, 0], [0, 0], [1.0])


def test_no_features_is_plain_mf(world: GenreWorld) -> None:
    model = HybridMF(n_factors=4, features=None, epochs=2, batch_size=256, device="cpu",
                     random_state=0).fit(world.data)
    assert model.encoder_.groups == ()
    _, fb = model.predict_ratings([0], [70])
    assert fb.all()


def test_feature_errors(world: GenreWorld) -> None:
    with pytest.raises(ConfigError, match="unknown feature group"):
        HybridMF(features=("genre",), epochs=1).fit(world.data)
    no_users = Interactions.from_dataframe(world.data.to_dataframe(),
                                           item_meta=world.data.item_meta)
    with pytest.raises(FieldError, match="demographics"):
        HybridMF(features=("demographics",), epochs=1).fit(no_users)
    with pytest.raises(ConfigError, match="n_factors"):
        HybridMF(n_factors=0, epochs=1).fit(world.data)


def test_factor_tables_reproduce_the_scores(hybrid: HybridMF) -> None:
    t = hybrid.factor_tables()
    lo, hi = t.y_range
    raw = t.user_factors @ t.item_factors.T + t.user_bias[:, None] + t.item_bias[None, :] \
        + t.global_bias
    expect = hybrid.score_users(np.arange(len(hybrid.user_vocab_)))
    torch.testing.assert_close(torch.sigmoid(raw) * (hi - lo) + lo, expect)
