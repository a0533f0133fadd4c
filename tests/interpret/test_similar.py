"""Similar items by title, co-rating and centred-factor similarity, the auto minimum, similar
users (issue 12)."""

import copy
import os

import numpy as np
import pandas as pd
import pytest
import torch

import collabkit
from collabkit.errors import ConfigError, NotSupportedError, UnknownIdError
from collabkit.interpret import find_item, similar_items, similar_users
from collabkit.interpret.lookup import normalise_title
from collabkit.interpret.similar import auto_min_ratings

pytestmark = pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")

TITLES = {10: "Silence of the Lambs, The (1991)", 20: "Star Wars (1977)",
          30: "Star Trek (1979)", 40: "Star Trek (2009)", 50: "Toy Story (1995)"}


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    rows = [(u, i, float(rng.integers(1, 6))) for u in range(8) for i in TITLES
            if not (i == 40 and u > 2)]  # item 40: 3 ratings, the others 8
    df = pd.DataFrame(rows, columns=["user", "item", "rating"])
    meta = pd.DataFrame({"title": list(TITLES.values())},
                        index=pd.Index(list(TITLES), name="item"))
    data = collabkit.load_ratings(df, item_meta=meta, rating_range=(1, 5))
    m = collabkit.BiasedMF(n_factors=2, epochs=1, random_state=0, device="cpu",
                           refit_users=False).fit(data)
    idx = m.item_vocab_.index(list(TITLES))
    known = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.9, 0.3], [-1.0, 0.0]])
    users = torch.tensor([[1.0, 1.0], [1.0, 1.1], [-1.0, 0.0], [0.0, 1.0], [0.5, 0.5],
                          [3.0, 3.0], [0.0, -1.0], [1.0, 0.0]])
    with torch.no_grad():
        m.module_.item_factors.weight[torch.as_tensor(idx)] = known
        m.module_.user_factors.weight[torch.as_tensor(m.user_vocab_.index(range(8)))] = users
    return m


def test_titles_are_found_forgivingly(model):  # issue 12
    assert normalise_title("Silence of the Lambs, The (1991)") == ("silence of the lambs", "1991")
    for q in ("silence of the lambs", "The Silence of the Lambs", "SILENCE OF THE LAMBS (1991)",
              "silence of the lambs, the", 10, "10"):
        assert find_item(model, q) == 10
    assert find_item(model, "star wars") == 20
    assert find_item(model, "Star Trek (2009)") == 40
    assert find_item(model, "star trek") == 30  # two exact titles: the most rated
    with pytest.raises(UnknownIdError, match=r"'star' matches 3 titles: .*Star Wars \(1977\)"):
        find_item(model, "star")
    with pytest.raises(UnknownIdError, match="no item id or title matches 'casablanca'"):
        find_item(model, "casablanca")


def test_centred_cosine_known_answer(model):  # issue 12
    # mean row (0.38, 0.28); centred: 10 (0.62,-0.28) 20 (0.62,-0.18) 30 (-0.38,0.72)
    # 40 (0.52,0.02) 50 (-1.38,-0.28)
    got = similar_items(model, "silence of the lambs", n=4, min_ratings=0, similarity="factors")
    assert list(got["item"]) == [20, 40, 30, 50]
    c = np.array([[0.62, -0.28], [0.62, -0.18], [-0.38, 0.72], [0.52, 0.02], [-1.38, -0.28]])
    cos = c @ c[0] / (np.linalg.norm(c, axis=1) * np.linalg.norm(c[0]))
    np.testing.assert_allclose(got["similarity"], cos[[1, 3, 2, 4]], atol=1e-6)
    assert list(got["title"])[0] == "Star Wars (1977)"
    raw = similar_items(model, 10, n=2, min_ratings=0, similarity="factors", centre=False)
    np.testing.assert_allclose(raw["similarity"], [1 / np.sqrt(1.01), 0.9 / np.sqrt(0.9)],
                               atol=1e-6)


def _adjusted_cosine_by_hand(model, item, shrink):
    """The shrunk adjusted cosine from the training table with pandas, pair by pair."""
    df = pd.DataFrame({"user": np.repeat(np.arange(len(model.seen_indptr_) - 1),
                                         np.diff(model.seen_indptr_)),
                       "item": model.item_vocab_.ids(model.seen_indices_),
                       "rating": model.seen_ratings_.astype(np.float64)})
    df["e"] = df["rating"] - df.groupby("user")["rating"].transform("mean")
    wide = df.pivot(index="user", columns="item", values="e")
    out = {}
    for other in wide.columns:
        both = wide[[item, other]].dropna()
        a, b = both[item].to_numpy(), both[other].to_numpy()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        corr = (a * b).sum() / den if den > 1e-12 else 0.0
        out[other] = corr * len(both) / (len(both) + shrink)
    return pd.Series(out)


def test_default_similarity_is_the_shrunk_adjusted_cosine(model):  # issue 12
    got = similar_items(model, "silence of the lambs", n=4, min_ratings=0, shrink=4.0)
    expect = _adjusted_cosine_by_hand(model, 10, 4.0).drop(10).sort_values(ascending=False)
    assert list(got["item"]) == list(expect.index)
    np.testing.assert_allclose(got["similarity"], expect.to_numpy(), atol=1e-9)
    assert list(got["shared"]) == [3 if i == 40 else 8 for i in got["item"]]
    assert got.equals(similar_items(model, 10, n=4, min_ratings=0, similarity="ratings",
                                    shrink=4.0))


def test_similarity_choice_and_its_errors(model):  # issue 12
    with pytest.raises(ConfigError, match="similarity must be 'auto', 'ratings' or 'factors'"):
        similar_items(model, 10, similarity="pearson")
    with pytest.raises(ConfigError, match="shrink must be a number of co-raters >= 0"):
        similar_items(model, 10, shrink=-1.0)
    old = copy.copy(model)
    old.seen_ratings_ = None  # a model file from before 0.1.0 stores no training ratings
    pd.testing.assert_frame_equal(similar_items(old, 10, min_ratings=0),
                                  similar_items(model, 10, min_ratings=0, similarity="factors"))
    with pytest.raises(NotSupportedError, match="similarity='factors'"):
        similar_items(old, 10, similarity="ratings")


def test_auto_minimum_drops_the_rarely_rated(model):  # issue 12
    counts = np.array([8, 8, 8, 3, 8])
    assert auto_min_ratings(counts) == 8
    got = similar_items(model, 10, n=4)  # "auto": item 40 (3 ratings) is left out
    assert 40 not in set(got["item"]) and (got["n_ratings"] >= 8).all()


def test_similar_users_known_answer(model):  # issue 12
    got = similar_users(model, 0, n=3)
    # centred rows: mean (0.6875, 0.575); user 0 (0.3125,0.425); 5 (2.3125,2.425) nearest
    assert list(got["user"])[:2] == [5, 1]
    assert got["shared"].iloc[0] == 4 and got["similarity"].iloc[0] > 0.99


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(os.environ.get("COLLABKIT_DATA", "/nonexistent"),
                                                   "ml-100k")),
                    reason="ml-100k not under $COLLABKIT_DATA")
def test_default_neighbours_on_ml100k_are_rated_and_separated():  # issue 12
    data = collabkit.load_dataset("ml-100k", download=False, progress=False)
    m = collabkit.fit(data, "dot", random_state=0, device="cpu")
    tops = {}
    for title in ("silence of the lambs", "star wars", "toy story"):
        top = m.similar_items(title, n=5)
        assert (top["n_ratings"] >= 50).all(), top
        assert np.ptp(top["similarity"]) > 0.03, top
        tops[title] = top["title"].tolist()
    # and a person would agree: the sequels and the other Lucas-Spielberg adventure
    assert {"Empire Strikes Back, The (1980)", "Return of the Jedi (1983)",
            "Raiders of the Lost Ark (1981)"} <= set(tops["star wars"])
