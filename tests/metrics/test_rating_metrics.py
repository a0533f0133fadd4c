"""Tests of collabkit.metrics.rating: known answers, input types, errors, properties."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from collabkit.errors import DataError
from collabkit.metrics import mae, rmse
from collabkit.metrics import rating as rating_module


def test_known_values() -> None:
    # errors 1 and -2: RMSE = sqrt((1 + 4) / 2), MAE = (1 + 2) / 2
    assert rmse([3.0, 4.0], [2.0, 6.0]) == pytest.approx(math.sqrt(2.5))
    assert mae([3.0, 4.0], [2.0, 6.0]) == 1.5
    assert rmse([1, 2, 3], [1, 2, 3]) == 0.0


@pytest.mark.parametrize("convert", [
    list,
    np.array,
    lambda v: np.array(v, dtype=np.float32),
    lambda v: np.array(v, dtype=np.float32)[:, None],  # (n, 1) predictions are flattened
    lambda v: torch.tensor(v, dtype=torch.float32, requires_grad=True),
    lambda v: torch.tensor(v, dtype=torch.float16),
])
def test_accepts_arrays_tensors_and_lists(convert: object) -> None:
    y_true, y_pred = [1.0, 2.5, 4.0, 5.0], [1.5, 2.5, 3.0, 4.0]
    assert rmse(convert(y_true), convert(y_pred)) == pytest.approx(math.sqrt(2.25 / 4))  # type: ignore[operator]
    assert mae(y_true, convert(y_pred)) == pytest.approx(0.625)  # type: ignore[operator]
    assert isinstance(rmse(convert(y_true), y_pred), float)  # type: ignore[operator]


def test_computes_in_float64() -> None:
    # In float32 the large offset swamps the 1e-3 errors; in float64 they survive exactly.
    y_true = np.full(1000, 4096.0, dtype=np.float32)
    y_pred = y_true + np.float32(0.0009765625)  # 2**-10, exactly representable at 4096 in float32
    assert mae(y_true, y_pred) == 2**-10
    assert rmse(y_true, y_pred) == 2**-10


@pytest.mark.parametrize(("y_true", "y_pred", "message"), [
    ([1.0, 2.0], [1.0], r"y_true has 2 values but y_pred has 1"),
    ([], [], r"empty"),
    ([1.0, np.nan, 3.0, np.nan], [1.0, 2.0, 3.0, 4.0], r"y_true has 2 NaN .* index 1"),
    ([1.0, 2.0, 3.0], [1.0, 2.0, np.inf], r"y_pred has 0 NaN and 1 infinite .* index 2"),
    (["a", "b"], [1.0, 2.0], r"y_true must hold numbers"),
])
def test_bad_inputs_raise_data_error(y_true: list, y_pred: list, message: str) -> None:
    for metric in (rmse, mae):
        with pytest.raises(DataError, match=message):
            metric(y_true, y_pred)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(rating_module).failed == 0


finite = st.floats(-10, 10, allow_nan=False)
pairs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(*[arrays(np.float64, n, elements=finite)] * 2)
)


@settings(max_examples=80, deadline=None)
@given(pair=pairs)
def test_rmse_mae_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = pair
    r, m = rmse(y_true, y_pred), mae(y_true, y_pred)
    assert 0.0 <= m <= r * (1 + 1e-12) + 1e-12  # mean |e| <= sqrt(mean e^2)
    assert r <= np.abs(y_true - y_pred).max() * (1 + 1e-12) + 1e-12
    assert r == rmse(y_pred, y_true) and m == mae(y_pred, y_true)
    assert r == pytest.approx(rmse(torch.from_numpy(y_true), torch.from_numpy(y_pred)))
    assert rmse(y_true, y_true) == 0.0
