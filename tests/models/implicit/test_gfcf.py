"""GraphFilter (GF-CF + BSPM sharpening) against the formula computed densely."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.errors import ConfigError, NotFittedError
from collabkit.models.implicit import GraphFilter
from collabkit.models.persist import load_model

from .conftest import assert_top1_is_missing_item


def _dense_scores(x: np.ndarray, alpha: float, sharpen: float) -> np.ndarray:
    du, di = x.sum(1), x.sum(0)
    rn = x / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    p = rn.T @ rn
    _, _, vt = np.linalg.svd(rn, full_matrices=False)
    v = vt.T  # full rank: V V^T is the projector on the row space, whatever the basis
    low = x @ np.diag(1 / np.sqrt(di)) @ v @ v.T @ np.diag(np.sqrt(di))
    s = x @ p + alpha * low
    # one RK4 step of ds/dt = -s P over time T: the Taylor polynomial of exp(-T P), degree 4
    poly = sum(np.linalg.matrix_power(-sharpen * p, j) / float(np.prod(range(1, j + 1)))
               for j in range(5))
    return s @ poly


@pytest.mark.parametrize("alpha,sharpen", [(0.0, 0.0), (0.3, 0.0), (0.3, 2.5)])
def test_scores_match_the_dense_formula(checkerboard, dense_x, alpha, sharpen) -> None:
    m = GraphFilter(n_factors=10, alpha=alpha, sharpen=sharpen, random_state=0,
                    device="cpu").fit(checkerboard)
    got = m._score_users(np.arange(20)).numpy()
    np.testing.assert_allclose(got, _dense_scores(dense_x, alpha, sharpen), atol=1e-4)


@pytest.mark.parametrize("sharpen", [0.0, 2.5])
def test_checkerboard_top1(checkerboard, sharpen) -> None:
    assert_top1_is_missing_item(GraphFilter(n_factors=4, sharpen=sharpen,
                                            random_state=0).fit(checkerboard))


def test_fold_in_is_the_score_of_the_interaction_vector(checkerboard, dense_x) -> None:
    m = GraphFilter(n_factors=4, random_state=0).fit(checkerboard)
    items = np.flatnonzero(dense_x[12])
    np.testing.assert_allclose(m.fold_in(items), m._score_users(np.array([12]))[0].numpy(),
                               atol=1e-6)
    rec = m.recommend_new_user(items, n=1)
    assert rec["item"].tolist() == [7] and rec["tier"].tolist() == ["personal"]  # 12 lacks 7
    assert set(m.similar_items(6, n=4)["item"]) == {5, 7, 8, 9}


def test_global_random_state_untouched(checkerboard) -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    GraphFilter(n_factors=4, random_state=0).fit(checkerboard)
    assert torch.rand(1) == expected


@pytest.mark.parametrize("bad", [{"alpha": -1.0}, {"n_factors": 0}, {"sharpen": float("nan")}])
def test_bad_params(checkerboard, bad) -> None:
    with pytest.raises(ConfigError):
        GraphFilter(**bad).fit(checkerboard)


def test_materialized_filter_gives_the_same_scores(checkerboard, tmp_path) -> None:
    kw = {"n_factors": 6, "alpha": 0.3, "sharpen": 2.5, "random_state": 0}
    lazy = GraphFilter(**kw, materialize=False).fit(checkerboard)
    assert lazy._dense is None and not lazy.materialized_
    dense = GraphFilter(**kw, materialize=True).fit(checkerboard)
    assert dense._dense is not None and dense._dense.shape == (10, 10)
    np.testing.assert_allclose(dense._score_users(np.arange(20)).numpy(),
                               lazy._score_users(np.arange(20)).numpy(), atol=1e-5)
    np.testing.assert_allclose(dense.fold_in([0, 1]), lazy.fold_in([0, 1]), atol=1e-5)
    back = load_model(dense.save(str(tmp_path / "gf")))
    assert back._dense is not None
    np.testing.assert_array_equal(back._dense.numpy(), dense._dense.numpy())


def test_issue13_auto_materializes_a_sharpened_filter_that_fits_in_memory(checkerboard,
                                                                        monkeypatch) -> None:
    """Issue 13: ``materialize="auto"`` (the default) builds the dense filter when sharpening
    makes lazy scoring costly and it needs at most half the available memory."""
    from collabkit.models.implicit import ease

    assert GraphFilter(n_factors=4, sharpen=2.5, random_state=0).fit(checkerboard).materialized_
    assert not GraphFilter(n_factors=4, sharpen=0.0, random_state=0).fit(
        checkerboard).materialized_
    monkeypatch.setattr(ease, "_available_bytes", lambda: 2 * 4 * 10 * 10 - 1)
    m = GraphFilter(n_factors=4, sharpen=2.5, random_state=0).fit(checkerboard)
    assert not m.materialized_ and m._dense is None
    with pytest.raises(ConfigError, match="materialize"):
        GraphFilter(materialize="yes").fit(checkerboard)


def test_issue13_a_fitted_filter_scores_with_its_fitted_alpha_and_sharpen(checkerboard,
                                                                        dense_x) -> None:
    """Issue 13: ``set_params`` on a fitted filter does not half-apply (the sharpened low-pass
    factor was built at fit time); it acts at the next fit, and ``refilter`` applies new
    scoring values to the fitted filter exactly."""
    m = GraphFilter(n_factors=10, alpha=0.3, sharpen=0.0, random_state=0,
                    materialize=False).fit(checkerboard)
    before = m._score_users(np.arange(20)).numpy()
    m.set_params(sharpen=2.5, alpha=0.8)
    np.testing.assert_array_equal(m._score_users(np.arange(20)).numpy(), before)
    m.fit(checkerboard)
    np.testing.assert_allclose(m._score_users(np.arange(20)).numpy(),
                               _dense_scores(dense_x, 0.8, 2.5), atol=1e-4)
    m.refilter(alpha=0.3, sharpen=1.5)
    assert (m.alpha, m.sharpen, m.alpha_, m.sharpen_) == (0.3, 1.5, 0.3, 1.5)
    np.testing.assert_allclose(m._score_users(np.arange(20)).numpy(),
                               _dense_scores(dense_x, 0.3, 1.5), atol=1e-4)


def test_issue13_refilter_refuses_a_low_pass_part_it_never_computed(checkerboard,
                                                                   tmp_path) -> None:
    m = GraphFilter(n_factors=4, alpha=0.0, random_state=0).fit(checkerboard)
    with pytest.raises(ConfigError, match="fitted with alpha=0.*fit it again"):
        m.refilter(alpha=0.3)
    with pytest.raises(ConfigError, match="sharpen must be"):
        m.refilter(sharpen=-1.0)
    with pytest.raises(NotFittedError):
        GraphFilter().refilter(alpha=0.1)
    m.refilter(sharpen=2.5)
    back = load_model(m.save(str(tmp_path / "gf")))
    assert back.sharpen_ == 2.5
    np.testing.assert_allclose(back._score_users(np.arange(20)).numpy(),
                               m._score_users(np.arange(20)).numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def random_clicks():
    """40 users x 30 items, ~25 % density, every user and item with at least one click."""
    import pandas as pd

    from collabkit.data.implicit import read_interactions

    rng = np.random.default_rng(7)
    x = (rng.random((40, 30)) < 0.25).astype(float)
    x[np.arange(40), np.arange(40) % 30] = 1.0
    u, i = np.nonzero(x)
    return read_interactions(pd.DataFrame({"user": u, "item": i})), x


@pytest.mark.parametrize("alpha,sharpen", [(0.0, 2.5), (0.2, 2.5), (0.3, 0.0)])
def test_issue13_blocked_scores_equal_the_unbatched_formula(random_clicks, monkeypatch,
                                                           alpha, sharpen) -> None:
    """Issue 13: scoring in blocks (sharpened low-pass factor, transposed propagation) gives
    the formula's scores within 1e-5, whatever the block size, batched or one user at a time."""
    import collabkit.models.implicit.gfcf as gfcf

    data, x = random_clicks
    m = GraphFilter(n_factors=30, alpha=alpha, sharpen=sharpen, random_state=0,
                    device="cpu").fit(data)
    users = data.user_vocab.ids(np.arange(40)).astype(int)  # raw id of each model index
    want = _dense_scores(x, alpha, sharpen)[users][:, data.item_vocab.ids(np.arange(30))
                                                   .astype(int)]
    monkeypatch.setattr(gfcf, "_COLS", 7)  # blocks of 7 rows: 6 blocks, the last one short
    batched = m._score_users(np.arange(40)).numpy()
    np.testing.assert_allclose(batched, want, atol=1e-5)
    one_by_one = np.stack([m._score_users(np.array([u])).numpy()[0] for u in range(40)])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
