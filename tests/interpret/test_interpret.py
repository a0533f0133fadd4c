"""Interpretation, plots and the learning-rate finder (issue 3) on planted data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from collabkit.api import lr_find as api_lr_find
from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError, UnknownIdError
from collabkit.interpret import explain, item_biases, pca, similar_items
from collabkit.models.baseline import BiasBaseline
from collabkit.models.biased_mf._estimator import BiasedMF
from collabkit.models.biased_mf._module import DotProductBias, sigmoid_range
from collabkit.plots import plot_history, plot_lr_find, plot_pca
from collabkit.recommend.foldin import fold_in_user
from collabkit.recommend.onboarding import item_counts
from collabkit.train.lr_find import lr_find, steepest, valley

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def clustered(seed: int = 0, n_users: int = 150, n_items: int = 40, noise: float = 0.1):
    """Two item clusters with orthogonal factor directions; popularity falls with the id."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n_items) % 2
    Q = np.eye(2)[cluster] * 0.9 + rng.normal(0, 0.05, (n_items, 2))
    P = rng.normal(0, 0.8, (n_users, 2))
    bu, bi = rng.normal(0, 0.2, n_users), rng.normal(0, 0.3, n_items)
    u, i = np.nonzero(rng.random((n_users, n_items)) < np.linspace(0.8, 0.25, n_items))
    r = 3.2 + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, noise, u.size)
    meta = pd.DataFrame({"title": [f"{'AB'[c]}{j}" for j, c in enumerate(cluster)]},
                        index=pd.Index(np.arange(n_items), name="item"))
    data = Interactions.from_dataframe(pd.DataFrame({"user": u, "item": i, "rating": r}),
                                       item_meta=meta, rating_range=(1.0, 5.0))
    return data, P, Q, bu, bi, cluster


@pytest.fixture(scope="module")
def planted():
    return clustered()


@pytest.fixture(scope="module")
def exact(planted) -> BiasedMF:
    """A BiasedMF holding the planted tables (sigmoid range on, global bias 0)."""
    data, P, Q, bu, bi, _ = planted
    m = BiasedMF(n_factors=2, y_range=(0.0, 5.5), device="cpu")
    m._fit_common(data)
    ui = data.user_vocab.index(m.user_vocab_.all_ids)
    ii = data.item_vocab.index(m.item_vocab_.all_ids)
    mod = DotProductBias(len(ui), len(ii), 2, (0.0, 5.5))
    with torch.no_grad():
        for table, values in ((mod.user_factors, P[ui]), (mod.item_factors, Q[ii]),
                              (mod.user_bias, bu[ui][:, None]), (mod.item_bias, bi[ii][:, None])):
            table.weight.copy_(torch.as_tensor(values))
    m.module_, m.device_, m.history_, m.seed_, m.n_valid_ = mod.eval(), torch.device("cpu"), \
        [], 0, 0
    return m


@pytest.fixture(scope="module")
def trained(planted) -> BiasedMF:
    return BiasedMF(n_factors=4, epochs=8, lr=1e-2, batch_size=64, random_state=0,
                    device="cpu").fit(planted[0])


# --------------------------------------------------------------------------- item biases
def test_item_biases_ordering(planted, exact: BiasedMF):
    bi = planted[4]
    counts = item_counts(exact)
    out = item_biases(exact, 3, min_ratings=60)
    low, high = out[out["end"] == "lowest"], out[out["end"] == "highest"]
    assert low["bias"].is_monotonic_increasing and high["bias"].is_monotonic_decreasing
    eligible = np.flatnonzero(counts >= 60)
    raw = exact.item_vocab_.ids(eligible)
    assert low["item"].tolist() == raw[np.argsort(bi[raw])][:3].tolist()
    assert high["item"].tolist() == raw[np.argsort(-bi[raw])][:3].tolist()
    assert (out["n_ratings"] >= 60).all() and (out["source"] == "learned").all()
    assert out["title"].iloc[0] == f"{'AB'[raw[np.argsort(bi[raw])][0] % 2]}" \
        f"{raw[np.argsort(bi[raw])][0]}"


def test_item_biases_degrade_to_the_baseline(planted):
    out = item_biases(BiasBaseline().fit(planted[0]), 2, min_ratings=1)
    assert (out["source"] == "baseline").all() and len(out) == 4
    with pytest.raises(ConfigError, match="min_ratings"):
        item_biases(BiasBaseline().fit(planted[0]), 2, min_ratings=10**6)


# --------------------------------------------------------------------------- PCA
def test_pca_first_component_separates_the_clusters(planted, exact: BiasedMF):
    cluster = planted[5]
    res = pca(exact, 2, min_ratings=1)
    assert res.components.shape == (2, 2)
    vr = res.explained_variance_ratio
    assert vr[0] >= vr[1] > 0 and vr.sum() <= 1 + 1e-9
    pc1 = res.coords.set_index("item")["pc1"]
    sides = np.sign(pc1.to_numpy())
    labels = cluster[pc1.index.to_numpy()]
    assert len(set(sides[labels == 0])) == 1 and len(set(sides[labels == 1])) == 1
    assert sides[labels == 0][0] != sides[labels == 1][0]
    assert len(res.titles_at(1, "low")) == 10
    with pytest.raises(ConfigError):
        pca(exact, 3)
    with pytest.raises(ConfigError, match="item factors"):
        pca(BiasBaseline().fit(planted[0]))


# --------------------------------------------------------------------------- neighbours
def test_similar_items_stay_in_their_planted_cluster(planted, trained: BiasedMF):
    cluster = planted[5]
    for item in (0, 1, 6, 13):
        out = similar_items(trained, item, 5)
        assert item not in set(out["item"]) and len(out) == 5
        assert (cluster[out["item"].to_numpy()] == cluster[item]).all(), out
        assert out["similarity"].is_monotonic_decreasing


def test_similar_items_unknown_id(exact: BiasedMF):
    with pytest.raises(UnknownIdError, match="'nope'"):
        similar_items(exact, "nope")


# --------------------------------------------------------------------------- explain
def test_explain_terms_add_up(planted, exact: BiasedMF):
    data = planted[0]
    e = explain(exact, 3, 5, data=data)
    assert e.raw == pytest.approx(e.global_bias + e.user_bias + e.item_bias + e.dot)
    assert e.prediction == pytest.approx(float(sigmoid_range(torch.tensor(e.raw), 0.0, 5.5)))
    assert e.prediction == pytest.approx(exact.predict([3], [5])["prediction"].iloc[0])
    c = e.contributions
    assert c["weight"].is_monotonic_decreasing and 5 not in set(c["item"])
    np.testing.assert_allclose(c["weight"], c["similarity"] * c["deviation"])
    df = data.to_dataframe()
    truth = df[df["user"] == 3].set_index("item")["rating"]
    np.testing.assert_allclose(c.set_index("item")["rating"], truth.reindex(c["item"]), rtol=1e-6)
    assert e.ratings_source == "ratings" and "predicted" in str(e)
    # without data the ratings stored in the model answer; a model without them, its own fit
    stored = explain(exact, 3, 5)
    assert stored.ratings_source == "ratings"
    with_data = explain(exact, 3, 5, data=data).contributions
    pd.testing.assert_frame_equal(stored.contributions, with_data)
    saved, exact.seen_ratings_ = exact.seen_ratings_, None
    try:
        assert explain(exact, 3, 5).ratings_source == "predicted"
    finally:
        exact.seen_ratings_ = saved


def test_explain_folded_user_and_other_models(planted, exact: BiasedMF):
    fu = fold_in_user(exact, {0: 5.0, 2: 4.5, 1: 1.5})
    e = explain(exact, fu, 4)
    assert e.user == "folded" and len(e.contributions) == 3
    assert e.prediction == pytest.approx(fu.scores()[exact.item_vocab_.index([4])[0]])
    als = pytest.importorskip("collabkit.models.als", reason="BiasedALS not there yet")
    model = als.BiasedALS(n_factors=2, epochs=3, random_state=0, device="cpu").fit(planted[0])
    e = explain(model, 3, 5)
    assert e.source == "learned" and e.y_range is None
    assert e.prediction == pytest.approx(np.clip(e.raw, 1.0, 5.0))
    base = explain(BiasBaseline().fit(planted[0]), 3, 5)
    assert base.source == "baseline" and base.dot is None
    with pytest.raises(UnknownIdError):
        explain(exact, 10**6, 5)
    with pytest.raises(DataError):
        explain(exact, 3, 5, data=pd.DataFrame({"a": [1]}))


# --------------------------------------------------------------------------- plots
def _is_png(path: str) -> bool:
    p = Path(path)
    return p.is_file() and p.stat().st_size > 1000 and p.read_bytes()[:8] == PNG_MAGIC


def test_plots_write_pngs(tmp_path: Path, exact: BiasedMF, trained: BiasedMF):
    assert _is_png(plot_pca(pca(exact, 2, min_ratings=1), tmp_path / "pca.png", n_labels=8))
    assert _is_png(plot_history(trained.history_, tmp_path / "sub" / "history.png"))
    lrs = np.geomspace(1e-5, 1, 30)
    losses = 1 + (np.log10(lrs) + 2.5) ** 2 / 10
    assert _is_png(plot_lr_find(lrs, losses, 1e-3, tmp_path / "lr.png"))
    with pytest.raises(DataError):
        plot_history([], tmp_path / "x.png")
    with pytest.raises(DataError):
        plot_lr_find([1e-3], [1.0, 2.0], None, tmp_path / "x.png")


# --------------------------------------------------------------------------- lr_find
def test_lr_find_suggestion_is_finite_and_in_range(planted, tmp_path: Path):
    res = api_lr_find({"kind": "dot", "n_factors": 4, "batch_size": 128}, planted[0],
                      start=1e-5, end=1.0, steps=60)
    assert len(res.lrs) == len(res.losses) == len(res.raw_losses) <= 60
    assert np.all(np.diff(res.lrs) > 0) and res.lrs[0] == pytest.approx(1e-5)
    for s in (res.suggestion, res.steepest):
        assert np.isfinite(s) and 1e-5 <= s <= 1.0
    assert _is_png(plot_lr_find(res.lrs, res.losses, res.suggestion,
                                str(tmp_path / "lr_find.png")))
    model = BiasedMF(n_factors=4)
    lr_find(model, planted[0], steps=10)
    assert not hasattr(model, "module_")  # the estimator passed in is left untouched


def test_lr_find_rules_and_errors(planted):
    lrs = np.geomspace(1e-4, 1, 9)
    losses = np.array([5, 4.9, 4.5, 3, 2, 1.5, 1.4, 3, 9], dtype=float)
    assert steepest(lrs, losses) == lrs[2]
    # fastai's rule: the valley is indices 0..6 (its start counted one before), so the pick
    # is -1 + int(7 / 3) + int(7 / 6) = 2
    assert valley(lrs, losses) == lrs[2]
    with pytest.raises(ConfigError):
        api_lr_find({"kind": "dot"}, planted[0], start=1.0, end=0.1)
    with pytest.raises(ConfigError, match="kind"):
        api_lr_find({"kind": "nope"}, planted[0])
    with pytest.raises(ConfigError, match="gradient"):
        lr_find(BiasBaseline(), planted[0])
