"""Kind "module": your own nn.Module as a full model (issue 12)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import collabkit
from collabkit.errors import ConfigError, ModelFileError
from collabkit.models.module import ModuleRecommender
from collabkit.testing.synthetic import planted_low_rank

HERE = Path(__file__).parent
pytestmark = pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")


@pytest.fixture
def nets(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # the user's module is importable, as installed
    import user_nets

    yield user_nets
    sys.modules.pop("user_nets", None)


@pytest.fixture(scope="module")
def data():
    return planted_low_rank(n_users=50, n_items=40, k=2, density=0.4, seed=4).data


def test_collabnn_fits_predicts_recommends_saves_loads(nets, data, tmp_path):  # issue 12
    torch.manual_seed(0)
    seen = []
    model = collabkit.fit(data, model=nets.CollabNN(*collabkit.emb_sizes(data)), epochs=3,
                          random_state=0, device="cpu", callback=seen.append)
    assert isinstance(model, ModuleRecommender) and model.kind == "module"
    assert [s.epoch for s in seen] == [1, 2, 3] and len(model.history_) == 3
    assert model.valid_rmse_ is not None and model.n_valid_ == round(0.2 * len(data))
    assert isinstance(model.network, nets.CollabNN)
    users = data.user_vocab.ids(data.users[:20])
    items = data.item_vocab.ids(data.items[:20])
    before = model.predict(users, items)
    assert not before["fallback"].any() and np.isfinite(before["prediction"]).all()
    rec = model.recommend(users[0], n=5)
    assert len(rec) == 5 and (rec["tier"] == "model").all()
    # the trained module's own forward gives the same numbers as predict
    u = torch.as_tensor(model.user_vocab_.index(users))
    i = torch.as_tensor(model.item_vocab_.index(items))
    with torch.no_grad():
        direct = model.network.eval()(u, i).reshape(-1).double().numpy()
    np.testing.assert_allclose(model.predict(users, items, clip=False)["prediction"], direct,
                               rtol=1e-6)
    model.save(str(tmp_path / "m"))
    saved = json.loads((tmp_path / "m" / "model.json").read_text())
    assert saved["params"]["module"] == {
        "class": "user_nets:CollabNN",
        "args": {"user_sz": [50, 14], "item_sz": [40, 13], "y_range": [0, 5.5], "n_act": 100}}
    assert not list((tmp_path / "m").glob("*.pkl"))
    loaded = collabkit.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(users, items)["prediction"],
                                  before["prediction"])
    assert loaded.history_ == model.history_
    # interpretation through the detected tables (user_factors, item_factors)
    sim = loaded.similar_items(items[0], n=3)
    assert len(sim) == 3 and items[0] not in set(sim["item"])
    assert len(loaded.recommend_new_user({items[0]: 5, items[1]: 2, items[2]: 4}, n=3)) == 3


def test_attribute_convention_saves_without_decorator(nets, data, tmp_path):  # issue 12
    torch.manual_seed(1)
    (nu, _), (ni, _) = collabkit.emb_sizes(data)
    model = collabkit.fit(data, model=nets.DotProductBias(nu, ni, 4), epochs=2, device="cpu")
    model.save(str(tmp_path / "m"))
    spec = json.loads((tmp_path / "m" / "model.json").read_text())["params"]["module"]
    assert spec == {"class": "user_nets:DotProductBias",
                    "args": {"n_users": 50, "n_items": 40, "n_factors": 4,
                             "y_range": [0, 5.5]}}
    loaded = collabkit.load_model(tmp_path / "m")
    assert isinstance(loaded.network, nets.DotProductBias)
    np.testing.assert_array_equal(loaded.predict([0, 1], [0, 1])["prediction"],
                                  model.predict([0, 1], [0, 1])["prediction"])


def test_save_refused_clearly_without_arguments(nets, data, tmp_path):  # issue 12
    model = collabkit.fit(data, model=nets.Forgetful(50, 40), epochs=1, device="cpu")
    assert len(model.recommend(data.user_vocab.ids([0])[0], n=2)) == 2
    with pytest.raises(ConfigError, match=r"n_users, n_items are not stored.*remember_args"):
        model.save(str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_load_refuses_clearly_when_class_cannot_be_imported(nets, data, tmp_path):  # issue 12
    model = collabkit.fit(data, model=nets.CollabNN((50, 4), (40, 4)), epochs=1, device="cpu")
    model.save(str(tmp_path / "m"))
    sys.modules.pop("user_nets", None)
    sys.path.remove(str(HERE))
    with pytest.raises(ModelFileError, match=r"'CollabNN' from 'user_nets'.*PYTHONPATH"):
        collabkit.load_model(tmp_path / "m")
    sys.path.insert(0, str(HERE))


def test_tables_too_small_are_refused_by_name(nets, data):  # issue 12
    with pytest.raises(ConfigError, match=r"user table has 10 rows but the training data has "
                                          r"50 users.*emb_sizes"):
        collabkit.fit(data, model=nets.CollabNN((10, 4), (40, 4)), epochs=1)


def test_default_module_is_the_chapter_collabnn(data):
    m = ModuleRecommender(epochs=1, random_state=0, device="cpu").fit(data)
    assert type(m.network).__name__ == "CollabNN"
    assert m.network.user_factors.weight.shape == (50, 14)
    again = ModuleRecommender(epochs=1, random_state=0, device="cpu").fit(data)
    assert again.history_[0]["train_loss"] == m.history_[0]["train_loss"]  # seeded


def test_emb_sizes_follow_fastai_rule(data):
    assert collabkit.emb_sizes(data) == [(50, 14), (40, 13)]
    from collabkit.models.nn import emb_size_rule

    assert emb_size_rule(944) == 74 and emb_size_rule(1666) == 102  # fastai on ml-100k
