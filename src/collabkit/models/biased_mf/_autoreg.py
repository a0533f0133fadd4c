r"""BiasedMF's defaults that follow the data (issue 14).

Three things a user with their own ratings file gets without asking:

* **Regularisation chosen on the validation rows.** With ``wd="auto"`` (the default) the
  candidate strengths are ``0.1 x v / 1.25`` times 1, 3, 9 and 27, where ``v`` is the
  variance of the training ratings (1.25 on MovieLens 100k, so the first candidate is the
  former default 0.1 there, and a -10..+10 scale starts 17 times higher). Each candidate
  trains from the same initialisation and shuffle; the search stops at the first one that
  does not lower the validation RMSE of its epochs, and the best is kept (``wd_``, with every
  strength tried and its RMSE in ``wd_tried_``). On MovieLens this costs one extra run of the
  epochs (the closed-form passes run once, for the chosen strength).
* **A safety net.** When the fitted model scores worse on the validation rows than the
  damped-bias baseline fitted to the same training rows, a
  :class:`~collabkit.errors.ModelFitWarning` says so and, with ``fallback=True`` (the
  default), the model serves the baseline's predictions and rankings (``serving_`` is
  ``"baseline"``; ``"model"`` otherwise).
* **Every row used.** The validation rows only choose and check: after that, the closed-form
  passes (``refit_users``) are solved again on all the rows ``fit`` was given, so the saved
  model has learned from the validation carve too (``n_final_pass_rows_``).

What was chosen is in :attr:`chosen_`, saved with the model and printed by
``collabkit train``. The candidates, the search and the safety net are shared with SVD++
(:mod:`collabkit.models._safety`); this module adds what is BiasedMF's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.models._safety import (
    REFERENCE_VARIANCE,
    WD_BASE,
    WD_STEPS,
    SafetyNetMixin,
    search_strength,
)
from collabkit.models._safety import strength_candidates as wd_candidates
from collabkit.seeds import torch_generator
from collabkit.train.runner import TrainResult

__all__ = ["AutoRegMixin", "REFERENCE_VARIANCE", "WD_BASE", "WD_STEPS", "wd_candidates"]


class AutoRegMixin(SafetyNetMixin):
    """``wd="auto"``, ``fallback`` and the all-rows passes of BiasedMF (see the module)."""

    _auto_wd = True
    # read from the BiasedMF it is mixed into (declared, not defined: BiasedMF's own
    # attributes and methods, from TorchRecommender and Recommender, are the ones used)
    wd: Any
    refit_users: bool
    module_: torch.nn.Module
    device_: torch.device
    seed_: int | None
    fit_seconds_: float | None
    _build_module: Callable[[torch.Generator], torch.nn.Module]
    _after_train: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
    # set here
    wd_: float | None
    wd_tried_: list[list[float | None]]

    # ---------------------------------------------------------------- the search
    def _search_wd(self, train_once: Callable[[float, bool], TrainResult], r: np.ndarray,
                   has_valid: bool) -> TrainResult:
        """Train with each candidate strength (``train_once(wd, first)``); keep the best."""
        self._start_serving_model()
        auto = isinstance(self.wd, str)
        if not auto or not has_valid:
            self.wd_ = wd_candidates(r)[0] if auto else float(self.wd)
            self.wd_tried_ = []
            return train_once(self.wd_, True)
        assert self.seed_ is not None, "fit() sets seed_ before training"
        seed = self.seed_

        def restart() -> torch.nn.Module:  # the same initial factors as the first candidate
            self.module_ = self._build_module(torch_generator(seed)).to(self.device_)
            return self.module_

        found = search_strength(wd_candidates(r), train_once, restart, lambda: self.module_)
        self.wd_, self.wd_tried_ = found.value, found.tried
        return found.result

    def _wd_value(self) -> float:
        """The strength used: the chosen one after ``fit``, else ``wd`` itself."""
        used = getattr(self, "wd_", None)
        return float(used) if used is not None else float(
            wd_candidates(np.zeros(0))[0] if isinstance(self.wd, str) else self.wd)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        if self._serves_baseline():
            return self._baseline_idx(u, i)
        return super()._predict_idx(u, i)  # type: ignore[misc]

    # ---------------------------------------------------------------- all rows
    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        super()._fit(data, u, i, valid)  # type: ignore[misc]
        self._served_valid_rmse()
        self.n_final_pass_rows_ = 0
        if valid is None and self.n_valid_ and self.refit_users and not self._serves_baseline():
            assert self.fit_seconds_ is not None, "TorchRecommender._fit sets fit_seconds_"
            self.fit_seconds_ += self._after_train(u, i, data.ratings.astype(np.float32))
            self.n_final_pass_rows_ = int(len(u))
