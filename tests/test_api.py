"""The short public path, on the real (local) MovieLens data."""

import numpy as np
import pandas as pd
import pytest

import collabkit
from collabkit.errors import ConfigError


@pytest.fixture(scope="module")
def small():
    return collabkit.load_dataset("ml-latest-small", download=False)


def test_bundled_dataset_has_titles(small):
    assert len(small) == 100836 and small.rating_range == (0.5, 5.0)
    assert small.titles([1]) == ["Toy Story (1995)"]


@pytest.mark.parametrize("how", ["random", "user", "temporal", "last"])
def test_split_partitions_rows(small, how):
    train, test = collabkit.split(small, how, test_frac=0.2, seed=1)
    assert len(train) + len(test) == len(small)
    pairs = lambda d: set(zip(d.users.tolist(), d.items.tolist(), strict=True))  # noqa: E731
    assert not pairs(train) & pairs(test)
    if how == "last":  # each user's latest rating is held out
        assert len(test) == np.unique(small.users).size


@pytest.mark.needs_data("ml-100k")
def test_canonical_split_shares_vocab():
    train, test = collabkit.load_split("ml-100k", "u1")
    assert (len(train), len(test)) == (80000, 20000)
    assert train.user_vocab is test.user_vocab
    assert train.user_meta is not None and "occupation" in train.user_meta.columns


def test_split_errors():
    data = collabkit.load_ratings(pd.DataFrame({"u": [1, 2], "i": [1, 1], "r": [3.0, 4.0]}))
    with pytest.raises(ConfigError, match="needs timestamps"):
        collabkit.split(data, "temporal")
    with pytest.raises(ConfigError, match="unknown split 'weekly'"):
        collabkit.split(data, "weekly")


def test_fit_by_kind_and_unknown_kind(small):
    part = small.take(np.arange(2000))
    model = collabkit.fit(part, "bias")
    assert isinstance(model, collabkit.BiasBaseline)
    with pytest.raises(ConfigError, match="unknown model kind 'svm'; known kinds: "):
        collabkit.fit(part, "svm")
    assert "dot" in collabkit.model_kinds()


def test_issue9_fit_refuses_a_parameter_the_kind_does_not_take(small):
    # issue 9: the CLI dropped wd for svdpp; the API raised a bare TypeError
    with pytest.raises(ConfigError) as e:
        collabkit.fit(small.take(np.arange(500)), "svdpp", wd=7, y_range=(0, 9))
    assert str(e.value) == (
        "model 'svdpp' does not take 'wd', 'y_range'; its parameters are n_factors, epochs, lr, "
        "reg, reg_bias, batch_size, init_std, clip, n_threads, valid_frac, fallback, "
        "random_state")  # issue 14 added valid_frac and fallback


def test_gowalla_by_name(data_dir):
    if not (data_dir / "gowalla" / "train.txt").is_file():
        pytest.skip(f"gowalla not found under {data_dir}; set COLLABKIT_DATA")
    both = collabkit.load_dataset("gowalla")
    train, test = collabkit.load_split("gowalla", "canonical")
    assert both.implicit and len(both) == len(train) + len(test) == 810128 + 217242
    assert train.item_vocab == test.item_vocab == both.item_vocab
    with pytest.raises(ConfigError, match="gowalla has one split, 'canonical'"):
        collabkit.load_split("gowalla", "u1")


def test_fit_implicit_kind_by_name():
    from collabkit.data.implicit import to_implicit

    data = to_implicit(collabkit.load_dataset("ml-latest-small", progress=False), threshold=4)
    model = collabkit.fit(data, "gfcf", n_factors=16, random_state=0)
    rec = model.recommend(data.user_vocab.ids([0])[0], n=3)
    assert len(rec) == 3 and (rec["tier"] == "model").all()
