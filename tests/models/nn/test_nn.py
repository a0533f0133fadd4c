"""EmbeddingNN and MLPRecommender: planted known answers, batched scoring, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models import registry
from collabkit.models.base import Recommender
from collabkit.models.baseline import BiasBaseline
from collabkit.models.nn._estimator import MLPRecommender
from collabkit.models.nn._module import EmbeddingNN, emb_size_rule
from collabkit.models.persist import load_model, save_model
from collabkit.testing import planted_low_rank

FAST = dict(layers=(64,), dropout=0.0, emb_dropout=0.0, epochs=15, lr=1e-2, wd=0.1,
            batch_size=128, valid_frac=0.0, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def split() -> tuple[Interactions, Interactions]:
    data = planted_low_rank(n_users=200, n_items=100, k=2, density=0.4, noise=0.1,
                            seed=0).data
    perm = np.random.default_rng(0).permutation(len(data))
    n_test = len(data) // 5
    return data.take(perm[n_test:]), data.take(perm[:n_test])


@pytest.fixture(scope="module")
def mlp(split: tuple[Interactions, Interactions]) -> MLPRecommender:
    return MLPRecommender(**FAST).fit(split[0])


def _with_meta(data: Interactions) -> Interactions:
    """``data`` plus genres / years for items 0..109 and occupations for users 0..209."""
    items, users = np.arange(110), np.arange(210)
    item_meta = pd.DataFrame({"genres": [f"G{k % 3}|G{k % 5}" for k in items],
                              "year": pd.array(1990 + items % 7, dtype="Int64")},
                             index=pd.Index(items, name="item"))
    user_meta = pd.DataFrame({"occupation": [f"o{k % 4}" for k in users],
                              "age": 15 + users % 50}, index=pd.Index(users, name="user"))
    ts = (8e8 + np.arange(len(data)) * 1e3).astype(np.int64)
    return Interactions.from_dataframe(data.to_dataframe().assign(timestamp=ts),
                                       item_meta=item_meta, user_meta=user_meta)


def _rmse(model: Recommender, test: Interactions) -> float:
    pred, _ = model.predict_ratings(test.user_vocab.ids(test.users),
                                    test.item_vocab.ids(test.items))
    return float(np.sqrt(np.mean((pred - test.ratings) ** 2)))


def test_emb_size_rule_matches_fastai() -> None:
    assert [emb_size_rule(n) for n in (944, 1665, 2, 10**9)] == [74, 102, 2, 600]


def test_forward_keeps_a_batch_of_one() -> None:
    m = EmbeddingNN(5, 7, layers=(8, 4), dropout=(0.1, 0.1)).eval()
    out = m(torch.tensor([1]), torch.tensor([2]))
    assert out.shape == (1,)
    assert 0.0 < out.item() < 5.5


def test_score_grid_equals_forward_on_all_pairs() -> None:
    torch.manual_seed(0)
    m = EmbeddingNN(6, 9, layers=(16, 8), dropout=(0.5, 0.5), emb_dropout=0.5,
                    cat_cardinalities=(3, 4), n_cont=2).eval()
    cats = torch.stack([torch.arange(6) % 3, torch.arange(6) % 4], dim=1)
    conts = torch.randn(9, 2)
    u, i = torch.meshgrid(torch.arange(6), torch.arange(9), indexing="ij")
    direct = m(u.reshape(-1), i.reshape(-1), cats[u.reshape(-1)], conts[i.reshape(-1)])
    grid = m.score_grid(torch.arange(6), torch.arange(9), cats, conts, max_rows=20)
    torch.testing.assert_close(grid.reshape(-1), direct)


def test_cold_index_uses_the_mean_embedding() -> None:
    m = EmbeddingNN(4, 5, layers=(8,), dropout=(0.0,), init_std=1.0).eval()
    with torch.no_grad():
        cold = m(torch.tensor([-1]), torch.tensor([2]), cold=True)
        x = torch.cat([m.user_emb.weight.mean(0), m.item_emb.weight[2]])[None]
        manual = m._head(m.body(x))
    torch.testing.assert_close(cold, manual)


def test_learns_planted_low_rank(split: tuple[Interactions, Interactions],
                                 mlp: MLPRecommender) -> None:
    train, test = split
    # noise 0.1 is the floor; the bias baseline cannot see the rank-2 interaction (≈ 0.38).
    # Over random_state 0..5 these settings reach 0.14-0.29 (measured with the old seed+1
    # shuffle stream and with the SeedSequence streams of issue 9 alike), so the bar is
    # "learned most of the interaction", not one seed's lucky 0.14.
    assert _rmse(BiasBaseline().fit(train), test) > 0.3
    assert _rmse(mlp, test) < 0.3


def test_score_users_equals_predict_idx(mlp: MLPRecommender) -> None:
    nu, ni = len(mlp.user_vocab_), len(mlp.item_vocab_)
    u, i = np.repeat(np.arange(nu), ni), np.tile(np.arange(ni), nu)
    grid = mlp.score_users(np.arange(nu)).numpy()
    np.testing.assert_allclose(grid.ravel(), mlp._predict_idx(u, i), atol=1e-5)


def test_save_load_round_trip(tmp_path, split: tuple[Interactions, Interactions],
                              mlp: MLPRecommender) -> None:
    loaded = load_model(save_model(mlp, tmp_path / "nn"))
    assert isinstance(loaded, MLPRecommender) and loaded.layers == (64,)
    test = split[1]
    users, items = test.user_vocab.ids(test.users), test.item_vocab.ids(test.items)
    np.testing.assert_array_equal(loaded.predict_ratings(users, items)[0],
                                  mlp.predict_ratings(users, items)[0])
    pd.testing.assert_frame_equal(loaded.recommend([0, 1], n=3), mlp.recommend([0, 1], n=3))


def test_with_features_scores_cold_ids_and_round_trips(
        tmp_path, split: tuple[Interactions, Interactions]) -> None:
    data = _with_meta(split[0])
    model = MLPRecommender(**{**FAST, "epochs": 3}, use_features=True).fit(data)
    assert model.encoder_.groups == ("genres", "year", "demographics", "time")
    assert len(model.module_.cat_embs) == 2  # age bucket, occupation
    nu, ni = len(model.user_vocab_), len(model.item_vocab_)
    u, i = np.repeat(np.arange(nu), ni), np.tile(np.arange(ni), nu)
    np.testing.assert_allclose(model.score_users(np.arange(nu)).numpy().ravel(),
                               model._predict_idx(u, i), atol=1e-5)
    users, items = [0, 205, 205, 3], [105, 1, 106, 2]  # cold item, cold user, both, warm
    pred, fb = model.predict_ratings(users, items)
    assert not fb.any() and np.isfinite(pred).all()
    loaded = load_model(save_model(model, tmp_path / "nnf"))
    np.testing.assert_array_equal(loaded.predict_ratings(users, items)[0], pred)


def test_plain_model_falls_back_for_unknown_ids(mlp: MLPRecommender) -> None:
    pred, fb = mlp.predict_ratings([0, 10_000], [10_000, 0])
    assert fb.all()
    np.testing.assert_allclose(pred, mlp._baseline_idx(np.array([0, -1]), np.array([-1, 0])))


def test_random_state_reproducible_and_global_rng_untouched(
        split: tuple[Interactions, Interactions]) -> None:
    kw = {**FAST, "epochs": 2, "dropout": 0.3, "emb_dropout": 0.2}
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = MLPRecommender(**kw).fit(split[0])
    assert torch.equal(torch.get_rng_state(), before)
    b = MLPRecommender(**kw).fit(split[0])
    u, i = split[1].users, split[1].items
    np.testing.assert_array_equal(a._predict_idx(u, i), b._predict_idx(u, i))


@pytest.mark.parametrize(("params", "match"), [
    ({"layers": (10, 5), "dropout": (0.1,)}, "one value per hidden layer"),
    ({"layers": ()}, "layers must be"),
    ({"emb_dropout": 1.0}, "dropout probabilities"),
    ({"item_emb_size": 0}, "item_emb_size"),
])
def test_bad_parameters_raise(split: tuple[Interactions, Interactions], params: dict,
                              match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MLPRecommender(epochs=1, **params).fit(split[0])


def test_registered_with_params() -> None:
    assert registry.get("nn") is MLPRecommender
    params = MLPRecommender(layers=(8,)).get_params()
    assert params["layers"] == (8,) and params["use_features"] is False
