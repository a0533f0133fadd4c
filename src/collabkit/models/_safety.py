r"""Regularisation chosen on the validation rows and the bias-baseline safety net (issue 14).

Shared by the models whose defaults must hold up on any ratings file: BiasedMF
(:mod:`collabkit.models.biased_mf._autoreg`, strength ``wd``) and SVD++
(:mod:`collabkit.models.svdpp`, strength ``reg``).

* :func:`strength_candidates` gives the strengths tried: ``0.1 x (v / 1.25)^power`` times 1,
  3, 9 and 27, with ``v`` the variance of the training ratings (1.25 on MovieLens 100k, so
  the first candidate is 0.1 there). BiasedMF scales with the variance (``power=1``: a
  -10..+10 scale starts 17 times higher); SVD++ with the standard deviation (``power=0.5``,
  4.2 times higher there): its per-rating L2 on :math:`p_u, q_i` keeps the same fit when
  ratings, penalty and :math:`\lambda` all scale by ``s`` and the factors by
  :math:`\sqrt s`, and the variance-scaled start left it no factors on the -10..+10 set of
  ``benchmarks/defaults.py`` (validation 4.409 against the baseline's 4.358).
* :func:`search_strength` trains each candidate from the same initialisation, stops at the
  first that does not lower the validation RMSE of its last epoch, and keeps the best.
* :class:`SafetyNetMixin`: when the fitted model scores worse on the validation rows than the
  damped-bias baseline fitted to the same training rows, a
  :class:`~collabkit.errors.ModelFitWarning` says so and, with ``fallback=True``, the model
  serves the baseline's predictions, rankings and factor tables (``serving_`` is
  ``"baseline"``). What was chosen is in ``chosen_``, saved with the model and printed by
  ``collabkit train``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from collabkit.train.runner import TrainResult

__all__ = ["REFERENCE_VARIANCE", "WD_BASE", "WD_STEPS", "SafetyNetMixin", "Search",
           "search_strength", "strength_candidates"]

#: Variance of ml-100k's ratings: strengths are stated for a scale of that spread.
REFERENCE_VARIANCE = 1.25
#: The first candidate on MovieLens (BiasedMF's former default ``wd``, SVD++'s ``reg``).
WD_BASE = 0.1
#: Multipliers of the first candidate, tried in order while validation RMSE falls.
WD_STEPS = (1.0, 3.0, 9.0, 27.0)


def strength_candidates(ratings: np.ndarray, power: float = 1.0) -> list[float]:
    """The strengths an ``"auto"`` search tries on training ratings ``ratings``, in order:
    the first is ``0.1 x (variance / 1.25) ** power``."""
    var = float(np.var(np.asarray(ratings, dtype=np.float64))) if len(ratings) else 0.0
    start = WD_BASE * ((var / REFERENCE_VARIANCE) ** power if var > 0 else 1.0)
    return [start * s for s in WD_STEPS]


@dataclasses.dataclass(frozen=True)
class Search:
    """The outcome of :func:`search_strength`.

    ``value`` is the strength kept, ``tried`` every ``[strength, validation RMSE]`` in order
    (None for a non-finite RMSE: JSON has no inf), ``result`` the kept run's epochs with the
    seconds of every run.
    """

    value: float
    tried: list[list[float | None]]
    result: TrainResult


def search_strength(candidates: Sequence[float],
                    train_once: Callable[[float, bool], TrainResult],
                    restart: Callable[[], object] | None,
                    module: Callable[[], torch.nn.Module]) -> Search:
    """Train each candidate (``train_once(strength, first)``); keep the best on validation.

    ``restart()`` puts back the initial module before every candidate after the first (the
    same initial factors and shuffle; None when ``train_once`` starts afresh itself) and
    ``module()`` is the module trained; on return it holds the kept candidate's parameters.
    """
    best: tuple[float, float, TrainResult, dict[str, torch.Tensor]] | None = None
    tried: list[list[float | None]] = []
    seconds = 0.0
    for n, value in enumerate(candidates):
        if n and restart is not None:
            restart()
        result = train_once(value, n == 0)
        seconds += result.fit_seconds
        last = result.history[-1].valid_rmse if result.history else None
        v = float("inf") if last is None or not np.isfinite(last) else float(last)
        tried.append([value, None if v == float("inf") else v])
        if best is not None and not v < best[1]:
            break
        state = {k: t.detach().clone() for k, t in module().state_dict().items()}
        best = (value, v, result, state)
    assert best is not None, "search_strength needs at least one candidate"
    module().load_state_dict(best[3])
    return Search(best[0], tried, dataclasses.replace(best[2], fit_seconds=seconds))


class SafetyNetMixin:
    """``fallback``, ``serving_`` and ``chosen_`` of a model with an ``"auto"`` strength.

    The host names its strength in ``_strength_name`` (``"wd"``, ``"reg"``) and stores the
    chosen value in ``<name>_`` and the candidates in ``<name>_tried_``.
    """

    _strength_name = "wd"
    # read from the model it is mixed into (declared, not defined)
    n_factors: int
    fallback: bool
    global_mean_: float
    user_bias_base_: np.ndarray
    item_bias_base_: np.ndarray
    rating_range_: tuple[float, float]
    n_valid_: int
    valid_rmse_: float | None
    _baseline_idx: Callable[[np.ndarray, np.ndarray], np.ndarray]
    # set here
    serving_: str
    baseline_valid_rmse_: float | None
    model_valid_rmse_: float | None
    n_final_pass_rows_: int

    def _start_serving_model(self) -> None:
        self.serving_ = "model"
        self.baseline_valid_rmse_ = None

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

    def _table_device(self) -> torch.device:
        return getattr(self, "device_", None) or torch.device("cpu")

    def _baseline_scores(self, u: np.ndarray) -> torch.Tensor:
        lo, hi = self.rating_range_
        s = (self.global_mean_ + self.user_bias_base_[u][:, None]
             + self.item_bias_base_[None, :])
        return torch.as_tensor(np.clip(s, lo, hi), dtype=torch.float32,
                               device=self._table_device())

    def _baseline_tables(self) -> Any:
        """The baseline as factor tables: zero factors, its biases, clipped to the scale."""
        from collabkit.models.capabilities import FactorTables

        k = int(self.n_factors)
        nu, ni = len(self.user_bias_base_), len(self.item_bias_base_)
        f32, dev = torch.float32, self._table_device()
        lo, hi = self.rating_range_
        return FactorTables(torch.zeros(nu, k, dtype=f32, device=dev),
                            torch.as_tensor(self.user_bias_base_, dtype=f32, device=dev),
                            torch.zeros(ni, k, dtype=f32, device=dev),
                            torch.as_tensor(self.item_bias_base_, dtype=f32, device=dev),
                            float(self.global_mean_), None, (lo, hi))

    def _served_valid_rmse(self) -> None:
        """When serving the baseline, ``valid_rmse_`` is the baseline's (what predict gives);
        the model's own is kept as ``model_valid_rmse_``."""
        self.model_valid_rmse_ = self.valid_rmse_
        if self._serves_baseline():
            self.valid_rmse_ = self.baseline_valid_rmse_

    @property
    def chosen_(self) -> dict[str, Any]:
        """What the fit chose from the data: the strength, those tried, what it serves."""
        name = self._strength_name
        return {name: getattr(self, f"{name}_", None),
                f"{name}_tried": getattr(self, f"{name}_tried_", []),
                "strength": name,
                "serving": getattr(self, "serving_", "model"),
                "valid_rmse": getattr(self, "valid_rmse_", None),
                "model_valid_rmse": getattr(self, "model_valid_rmse_", None),
                "baseline_valid_rmse": getattr(self, "baseline_valid_rmse_", None),
                "n_valid": getattr(self, "n_valid_", 0),
                "n_final_pass_rows": getattr(self, "n_final_pass_rows_", 0)}

    def _chosen_state(self) -> dict[str, Any]:
        c, name = self.chosen_, self._strength_name
        return {f"{name}_used": c[name], f"{name}_tried": c[f"{name}_tried"],
                "serving": c["serving"], "model_valid_rmse": c["model_valid_rmse"],
                "baseline_valid_rmse": c["baseline_valid_rmse"],
                "n_final_pass_rows": c["n_final_pass_rows"]}

    def _load_chosen(self, extra: dict[str, Any]) -> None:
        name = self._strength_name
        given = getattr(self, name)
        setattr(self, f"{name}_", extra.get(f"{name}_used",
                                            None if isinstance(given, str) else given))
        setattr(self, f"{name}_tried_", extra.get(f"{name}_tried", []))
        self.serving_ = extra.get("serving", "model")
        self.model_valid_rmse_ = extra.get("model_valid_rmse")
        self.baseline_valid_rmse_ = extra.get("baseline_valid_rmse")
        self.n_final_pass_rows_ = extra.get("n_final_pass_rows", 0)
