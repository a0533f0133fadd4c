"""Rating-prediction error metrics: RMSE and MAE.

Both accept numpy arrays, torch tensors (on any device, with or without grad) or lists, flatten
them, and compute in float64 whatever the input dtype, so a float32 model's error is not
rounded twice.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from collabkit.errors import DataError

if TYPE_CHECKING:
    import torch

Values: TypeAlias = "ArrayLike | torch.Tensor"

__all__ = ["rmse", "mae"]


def _as_float64(name: str, values: Values) -> np.ndarray:
    torch = sys.modules.get("torch")  # if torch was never imported, `values` is no tensor
    if torch is not None and isinstance(values, torch.Tensor):
        values = values.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} must hold numbers (a numpy array, torch tensor or list); "
            f"converting it to float64 failed: {exc}"
        ) from exc


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        n_nan = int(np.isnan(arr[bad]).sum())
        raise DataError(
            f"{name} has {n_nan} NaN and {bad.size - n_nan} infinite values, the first at "
            f"(flattened) index {bad[0]}; drop those rows, or check the model for divergence"
        )


def _pair(y_true: Values, y_pred: Values) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = _as_float64("y_true", y_true), _as_float64("y_pred", y_pred)
    if truth.size != pred.size:
        raise DataError(
            f"y_true has {truth.size} values but y_pred has {pred.size}; pass one prediction "
            "per rating, in the same order"
        )
    if truth.size == 0:
        raise DataError("y_true and y_pred are empty; an error metric needs at least one rating")
    _check_finite("y_true", truth)
    _check_finite("y_pred", pred)
    return truth, pred


def rmse(y_true: Values, y_pred: Values) -> float:
    r"""Root mean squared error, :math:`\sqrt{\frac{1}{n}\sum_i (y_i - \hat y_i)^2}`.

    Parameters
    ----------
    y_true : array-like or torch.Tensor
        True ratings. Flattened, so shapes ``(n,)`` and ``(n, 1)`` both work.
    y_pred : array-like or torch.Tensor
        Predicted ratings, one per true rating in the same order.

    Returns
    -------
    float
        The RMSE, computed in float64.

    Raises
    ------
    DataError
        If the inputs differ in size, are empty, are not numeric, or contain NaN or infinite
        values (the message gives how many and the index of the first).

    Examples
    --------
    >>> rmse([3.0, 4.0], [2.0, 6.0])  # sqrt((1 + 4) / 2)
    1.5811388300841898
    """
    truth, pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean(np.square(truth - pred))))


def mae(y_true: Values, y_pred: Values) -> float:
    r"""Mean absolute error, :math:`\frac{1}{n}\sum_i |y_i - \hat y_i|`.

    Parameters
    ----------
    y_true : array-like or torch.Tensor
        True ratings. Flattened, so shapes ``(n,)`` and ``(n, 1)`` both work.
    y_pred : array-like or torch.Tensor
        Predicted ratings, one per true rating in the same order.

    Returns
    -------
    float
        The MAE, computed in float64.

    Raises
    ------
    DataError
        If the inputs differ in size, are empty, are not numeric, or contain NaN or infinite
        values (the message gives how many and the index of the first).

    Examples
    --------
    >>> mae([3.0, 4.0], [2.0, 6.0])
    1.5
    """
    truth, pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(truth - pred)))
