"""EASE: the closed form, the checkerboard, and the refusal with the memory it would need."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.errors import ConfigError
from collabkit.models.implicit import EASE
from collabkit.models.implicit.ease import ease_memory_bytes

from .conftest import assert_top1_is_missing_item


def test_weights_match_the_closed_form(checkerboard, dense_x) -> None:
    m = EASE(reg=2.0, device="cpu").fit(checkerboard)
    p = np.linalg.inv(dense_x.T @ dense_x + 2.0 * np.eye(10))
    b = np.eye(10) - p / np.diag(p)  # B = I - P diag(1 / diag P)
    np.testing.assert_allclose(m.weights_.numpy(), b, atol=1e-5)
    np.testing.assert_allclose(m._score_users(np.arange(20)).numpy(), dense_x @ b, atol=1e-5)


def test_checkerboard_top1(checkerboard) -> None:
    assert_top1_is_missing_item(EASE(reg=1.0).fit(checkerboard))


def test_fold_in_equals_scores_of_the_same_items(checkerboard, dense_x) -> None:
    m = EASE(reg=1.0).fit(checkerboard)
    items = np.flatnonzero(dense_x[3])
    np.testing.assert_allclose(m.fold_in(items), m._score_users(np.array([3]))[0].numpy(),
                               atol=1e-6)
    assert m.similar_items(0, n=3)["item"].isin([1, 2, 3, 4]).all()


def test_refuses_a_catalog_that_does_not_fit(checkerboard) -> None:
    assert ease_memory_bytes(40_981) == pytest.approx(3 * 4 * 40_981**2)  # ~20 GB for gowalla
    with pytest.raises(ConfigError, match=r"EASE needs about 0.0 GB for 10 items .* "
                                          r"use kind 'gfcf' or 'ials'"):
        EASE(max_memory_gb=1e-9).fit(checkerboard)


def test_bad_reg(checkerboard) -> None:
    with pytest.raises(ConfigError, match="reg must be a number > 0"):
        EASE(reg=0).fit(checkerboard)
