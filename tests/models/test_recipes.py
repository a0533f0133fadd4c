"""recipe="chapter", optimizer="sgd", BatchNorm in EmbeddingNN, MSE beside RMSE (issue 12)."""

import math

import numpy as np
import pytest
import torch

import collabkit
from collabkit.errors import ConfigError
from collabkit.models.nn import EmbeddingNN
from collabkit.models.recipes import recipe_params
from collabkit.testing.synthetic import planted_low_rank

pytestmark = pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")


@pytest.fixture(scope="module")
def data():
    return planted_low_rank(n_users=40, n_items=30, k=2, density=0.5, seed=5).data


def test_chapter_recipe_is_the_chapters_settings():  # issue 12
    dot = recipe_params("chapter", "dot")
    assert dot == {"epochs": 5, "lr": 5e-3, "wd": 0.1, "batch_size": 64, "valid_frac": 0.2,
                   "y_range": (0.0, 5.5), "n_factors": 50, "optimizer": "adamw",
                   "auto_batch": False, "refit_users": False}
    nn_ = recipe_params("chapter", "nn")
    assert nn_["use_bn"] is True and nn_["layers"] == (100, 50) and nn_["emb_dropout"] == 0.0


def test_fit_with_recipe_holds_out_a_fifth_and_params_override(data):  # issue 12
    m = collabkit.fit(data, "dot", recipe="chapter", epochs=1, random_state=0, device="cpu")
    assert m.n_valid_ == round(0.2 * len(data))
    p = m.get_params()
    assert (p["optimizer"], p["lr"], p["wd"], p["batch_size"], p["epochs"]) == \
        ("adamw", 5e-3, 0.1, 64, 1)
    assert m.batch_size_ == 64 and m.lr_ == 5e-3  # no auto batch
    h = m.history_[0]
    assert math.isclose(h["valid_mse"], h["valid_rmse"] ** 2)
    assert math.isclose(h["train_rmse"], math.sqrt(h["train_loss"]))


def test_unknown_recipe_and_kind_are_named(data):  # issue 12
    with pytest.raises(ConfigError, match="unknown recipe 'book'; known recipes: chapter"):
        collabkit.fit(data, "dot", recipe="book")
    with pytest.raises(ConfigError, match="not 'als'"):
        collabkit.fit(data, "als", recipe="chapter")


def test_sgd_trains(data):  # issue 12: the chapter trains by SGD
    m = collabkit.fit(data, "dot", optimizer="sgd", lr=0.1, epochs=4, batch_size=32,
                      refit_users=False, random_state=0, device="cpu")
    losses = [h["train_loss"] for h in m.history_]
    assert losses[-1] < losses[0]
    with pytest.raises(ConfigError, match="optimizer must be one of 'adamw', 'sgd'"):
        collabkit.fit(data, "nn", optimizer="adam")


def test_use_bn_builds_fastais_use_nn_network():  # issue 12
    net = EmbeddingNN(943, 1682, layers=(100, 50), dropout=(0.0, 0.0), emb_dropout=0.0,
                      use_bn=True)
    kinds = [type(m).__name__ for m in net.body]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout"] * 2
    assert net.body[0].bias is None and net.body[0].in_features == 74 + 103
    # score_grid (top-N) agrees with forward with BatchNorm in eval mode
    net.eval()
    u, i = torch.arange(3), torch.arange(5)
    grid = net.score_grid(u, i)
    pairs = net(u.repeat_interleave(5), i.repeat(3)).reshape(3, 5)
    torch.testing.assert_close(grid, pairs)


def test_nn_chapter_recipe_fits_and_reports_valid_rmse(data):  # issue 12
    m = collabkit.fit(data, "nn", recipe="chapter", epochs=1, random_state=0, device="cpu")
    assert m.valid_rmse_ == m.history_[-1]["valid_rmse"] and m.valid_rmse_ is not None
    assert np.isfinite(m.recommend(data.user_vocab.ids([0])[0], n=3)["score"]).all()
