"""The fold-in side of models trained with AdamW's decoupled weight decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from collabkit.models.capabilities import FoldRows, Side
from collabkit.train.rowsolve import RowPenalty, train_noise_variance

__all__ = ["ADAMW_REG_C", "AdamWFoldIn"]

#: calibration constant ``c`` of the AdamW-matched fold-in penalty
#: (:meth:`AdamWFoldIn.adamw_reg_scale`; calibrated on MovieLens 100k against trained rows)
ADAMW_REG_C = 2.0


class AdamWFoldIn:
    """Fold-in penalty and prior of a model trained by AdamW (``wd``, ``batch_size``)."""

    user_prior_precision_: np.ndarray | None
    # read from the estimator it is mixed into (TorchRecommender; declared, not defined)
    batch_size: int
    _wd_value: Callable[[], float]  # the wd in use (BiasedMF: the chosen one)

    def adamw_reg_scale(self) -> float:
        r"""The factor :math:`c\,\mathrm{wd}\sqrt{S}\,\sigma` of the AdamW-matched penalty.

        Decoupled weight decay has no objective: balancing the decay ``lr * wd`` per step
        against Adam's normalised gradient for a row that appears once per epoch of ``S``
        batches gives a diagonal :math:`\lambda_k = c\,\mathrm{wd}\sqrt{S}\,\sigma
        \sqrt{\textstyle\sum_i \hat d_i^2 a_{ik}^2}` (:data:`ADAMW_REG_C` is ``c``, ``σ``
        the last training RMSE, 1.0 without a history).
        """
        wd = self._wd_value()
        bs = float(getattr(self, "batch_size_", None) or self.batch_size)
        n_fit = self.n_fit_rows()
        steps = max(1.0, math.ceil(n_fit / bs)) if n_fit > 0 else 1000.0
        sigma = math.sqrt(train_noise_variance(getattr(self, "history_", None)))
        return ADAMW_REG_C * max(wd, 1e-4) * math.sqrt(steps) * sigma

    def n_fit_rows(self) -> float:
        """Rows the model was trained on (its training rows minus the validation carve)."""
        return float((getattr(self, "n_train_", None) or 0)
                     - (getattr(self, "n_valid_", 0) or 0))

    def stored_row_prior(self, folded: Side) -> tuple[np.ndarray, np.ndarray] | None:
        """The user prior of BiasedMF's final user pass (``refit_users=True``), if any."""
        mean = getattr(self, "user_prior_mean_", None)
        if folded != "users" or mean is None:
            return None
        return (np.asarray(mean, dtype=np.float64),
                np.asarray(self.user_prior_precision_, dtype=np.float64))

    def adamw_penalty(self, center: np.ndarray) -> RowPenalty:
        """AdamW's decoupled decay, matched as in :meth:`adamw_reg_scale`."""
        return RowPenalty("adamw", self.adamw_reg_scale(), center)

    def foldin_penalty(self, folded: Side, center: np.ndarray,
                       rated: FoldRows | None = None) -> RowPenalty | None:
        """AdamW's decoupled decay (:meth:`adamw_penalty`)."""
        return self.adamw_penalty(center)
