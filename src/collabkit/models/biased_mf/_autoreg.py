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
``collabkit train``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.seeds import torch_generator
from collabkit.train.runner import TrainResult

__all__ = ["AutoRegMixin", "REFERENCE_VARIANCE", "WD_BASE", "WD_STEPS", "wd_candidates"]

#: Variance of ml-100k's ratings: ``wd`` values are stated for a scale of that spread.
REFERENCE_VARIANCE = 1.25
#: The former default ``wd`` of BiasedMF, the first candidate on MovieLens.
WD_BASE = 0.1
#: Multipliers of the first candidate, tried in order while validation RMSE falls.
WD_STEPS = (1.0, 3.0, 9.0, 27.0)


def wd_candidates(ratings: np.ndarray) -> list[float]:
    """The strengths ``wd="auto"`` tries on training ratings ``ratings``, in order."""
    var = float(np.var(np.asarray(ratings, dtype=np.float64))) if len(ratings) else 0.0
    start = WD_BASE * (var / REFERENCE_VARIANCE if var > 0 else 1.0)
    return [start * s for s in WD_STEPS]


class AutoRegMixin:
    """``wd="auto"``, ``fallback`` and the all-rows passes of BiasedMF (see the module)."""

    _auto_wd = True
    # read from the BiasedMF it is mixed into (declared, not defined: BiasedMF's own
    # attributes and methods, from TorchRecommender and Recommender, are the ones used)
    wd: Any
    n_factors: int
    fallback: bool
    refit_users: bool
    module_: torch.nn.Module
    device_: torch.device
    seed_: int | None
    global_mean_: float
    user_bias_base_: np.ndarray
    item_bias_base_: np.ndarray
    rating_range_: tuple[float, float]
    n_valid_: int
    fit_seconds_: float | None
    valid_rmse_: float | None
    _build_module: Callable[[torch.Generator], torch.nn.Module]
    _after_train: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
    _baseline_idx: Callable[[np.ndarray, np.ndarray], np.ndarray]
    # set here
    wd_: float | None
    wd_tried_: list[list[float | None]]
    serving_: str
    baseline_valid_rmse_: float | None
    model_valid_rmse_: float | None
    n_final_pass_rows_: int

    # ---------------------------------------------------------------- the search
    def _search_wd(self, train_once: Callable[[float, bool], TrainResult], r: np.ndarray,
                   has_valid: bool) -> TrainResult:
        """Train with each candidate strength (``train_once(wd, first)``); keep the best."""
        self.serving_ = "model"
        self.baseline_valid_rmse_ = None
        auto = isinstance(self.wd, str)
        if not auto or not has_valid:
            self.wd_ = wd_candidates(r)[0] if auto else float(self.wd)
            self.wd_tried_ = []
            return train_once(self.wd_, True)
        best: tuple[float, float, TrainResult, dict[str, torch.Tensor]] | None = None
        tried: list[list[float | None]] = []
        seconds = 0.0
        assert self.seed_ is not None, "fit() sets seed_ before training"
        for n, wd in enumerate(wd_candidates(r)):
            if n:  # the same initial factors as the first candidate
                self.module_ = self._build_module(torch_generator(self.seed_)).to(self.device_)
            result = train_once(wd, n == 0)
            seconds += result.fit_seconds
            last = result.history[-1].valid_rmse if result.history else None
            v = float("inf") if last is None or not np.isfinite(last) else float(last)
            tried.append([wd, None if v == float("inf") else v])  # JSON has no inf
            if best is not None and not v < best[1]:
                break
            state = {k: t.detach().clone() for k, t in self.module_.state_dict().items()}
            best = (wd, v, result, state)
        assert best is not None
        self.module_.load_state_dict(best[3])
        self.wd_, self.wd_tried_ = best[0], tried
        return dataclasses.replace(best[2], fit_seconds=seconds)

    def _wd_value(self) -> float:
        """The strength used: the chosen one after ``fit``, else ``wd`` itself."""
        used = getattr(self, "wd_", None)
        return float(used) if used is not None else float(
            wd_candidates(np.zeros(0))[0] if isinstance(self.wd, str) else self.wd)

    # ---------------------------------------------------------------- the safety net
    def _when_baseline_wins(self, model_rmse: float, base_rmse: float) -> str:
        self.baseline_valid_rmse_ = base_rmse
        if not self.fallback:
            return (" fallback=False keeps the model anyway; with fallback=True it would serve "
                    "the baseline.")
        self.serving_ = "baseline"
        return (" It serves the damped-bias baseline's predictions and rankings instead "
                "(model.serving_ == 'baseline'; fallback=False keeps the model). A Bayesian "
                "model (kind 'bpmf') often does better on such data.")

    def _serves_baseline(self) -> bool:
        return getattr(self, "serving_", "model") == "baseline"

    def _baseline_scores(self, u: np.ndarray) -> torch.Tensor:
        lo, hi = self.rating_range_
        s = (self.global_mean_ + self.user_bias_base_[u][:, None]
             + self.item_bias_base_[None, :])
        return torch.as_tensor(np.clip(s, lo, hi), dtype=torch.float32, device=self.device_)

    def _baseline_tables(self) -> Any:
        """The baseline as factor tables: zero factors, its biases, clipped to the scale."""
        from collabkit.models.capabilities import FactorTables

        k = int(self.n_factors)
        nu, ni = len(self.user_bias_base_), len(self.item_bias_base_)
        f32, dev = torch.float32, self.device_
        lo, hi = self.rating_range_
        return FactorTables(torch.zeros(nu, k, dtype=f32, device=dev),
                            torch.as_tensor(self.user_bias_base_, dtype=f32, device=dev),
                            torch.zeros(ni, k, dtype=f32, device=dev),
                            torch.as_tensor(self.item_bias_base_, dtype=f32, device=dev),
                            float(self.global_mean_), None, (lo, hi))

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

    def _served_valid_rmse(self) -> None:
        """When serving the baseline, ``valid_rmse_`` is the baseline's (what predict gives);
        the model's own is kept as ``model_valid_rmse_``."""
        self.model_valid_rmse_ = self.valid_rmse_
        if self._serves_baseline():
            self.valid_rmse_ = self.baseline_valid_rmse_

    @property
    def chosen_(self) -> dict[str, Any]:
        """What the fit chose from the data: ``wd``, the strengths tried, what it serves."""
        return {"wd": getattr(self, "wd_", None), "wd_tried": getattr(self, "wd_tried_", []),
                "serving": getattr(self, "serving_", "model"),
                "valid_rmse": getattr(self, "valid_rmse_", None),
                "model_valid_rmse": getattr(self, "model_valid_rmse_", None),
                "baseline_valid_rmse": getattr(self, "baseline_valid_rmse_", None),
                "n_valid": getattr(self, "n_valid_", 0),
                "n_final_pass_rows": getattr(self, "n_final_pass_rows_", 0)}

    def _chosen_state(self) -> dict[str, Any]:
        c = self.chosen_
        return {"wd_used": c["wd"], "wd_tried": c["wd_tried"], "serving": c["serving"],
                "model_valid_rmse": c["model_valid_rmse"],
                "baseline_valid_rmse": c["baseline_valid_rmse"],
                "n_final_pass_rows": c["n_final_pass_rows"]}

    def _load_chosen(self, extra: dict[str, Any]) -> None:
        self.wd_ = extra.get("wd_used", None if isinstance(self.wd, str) else self.wd)
        self.wd_tried_ = extra.get("wd_tried", [])
        self.serving_ = extra.get("serving", "model")
        self.model_valid_rmse_ = extra.get("model_valid_rmse")
        self.baseline_valid_rmse_ = extra.get("baseline_valid_rmse")
        self.n_final_pass_rows_ = extra.get("n_final_pass_rows", 0)
