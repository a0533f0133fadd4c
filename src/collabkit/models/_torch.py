"""TorchRecommender: the shared estimator of the models trained by gradient descent in torch.

Its configuration fields (``epochs``, ``lr``, ``wd``, ``batch_size``, ``valid_frac``,
``device``, ``random_state``) are declared once here; each subclass takes them in its
``__init__`` (the sklearn contract) and this class reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models._adamw import AdamWFoldIn
from collabkit.models.base import Recommender
from collabkit.runtime import load_device, resolve_device
from collabkit.seeds import derive_seed, numpy_rng, resolve_seed, torch_generator
from collabkit.train.loop import OPTIMIZERS, fit_one_cycle
from collabkit.train.lr_find import GradientProblem
from collabkit.train.runner import EpochStats, TrainResult, check_not_diverged, remedy
from collabkit.train.validation import carve_validation

__all__ = ["TorchRecommender", "auto_y_range"]



def auto_y_range(lo: float, hi: float) -> tuple[float, float]:
    """``y_range="auto"``: a quarter of the scale's span below it, an eighth above.

    ``(0, 5.5)`` for 1-5 stars, as in the chapter; ``(-15, 12.5)`` for -10..+10; a scale that
    does not start at 1 keeps the same margins instead of reaching down to 0.
    """
    span = hi - lo if hi > lo else 4.0
    return (lo - span / 4, hi + span / 8)


class TorchRecommender(AdamWFoldIn, Recommender):
    """Shared machinery of the models trained by gradient descent with the one-cycle loop.

    Subclasses build their ``nn.Module`` in :meth:`_build_module` and say how to turn dense
    index arrays into its inputs with :meth:`_inputs`.
    """

    module_: torch.nn.Module
    #: the values ``optimizer`` may take (for subclasses that have the parameter)
    _optimizers: tuple[str, ...] = OPTIMIZERS

    # configuration: constructor arguments of every subclass, declared once
    epochs: int
    lr: float
    wd: float
    batch_size: int
    valid_frac: float
    device: str
    random_state: int | None
    # fitted state
    device_: torch.device
    seed_: int | None
    history_: list[dict[str, Any]]
    fit_seconds_: float | None
    n_valid_: int
    valid_rmse_: float | None
    user_prior_mean_: np.ndarray | None

    def _resolve_y_range(self) -> tuple[float, float] | None:
        y_range: Any = getattr(self, "y_range", "auto")
        if y_range is None:
            return None
        if isinstance(y_range, str):
            if y_range != "auto":
                raise ConfigError(f"y_range must be 'auto', None or (low, high), got {y_range!r}")
            return auto_y_range(*self.rating_range_)  # (0, 5.5) for 1-5 stars (the chapter)
        lo, hi = (float(v) for v in y_range)
        if not lo < hi:
            raise ConfigError(f"y_range must have low < high, got {y_range!r}")
        return (lo, hi)

    def _validate(self) -> None:
        for name in ("epochs", "batch_size", "n_factors"):
            if not hasattr(self, name):  # n_factors: not every model has one
                continue
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        auto = self.wd == "auto" and getattr(self, "_auto_wd", False)
        if not auto and not (isinstance(self.wd, int | float) and 0 <= self.wd < np.inf):
            raise ConfigError(f"wd must be a number >= 0, got {self.wd!r}")
        opt = getattr(self, "optimizer", "adamw")
        if opt not in self._optimizers:
            raise ConfigError(f"optimizer must be one of {', '.join(map(repr, self._optimizers))}"
                              f", got {opt!r}")
        if not 0 <= self.valid_frac < 1:
            raise ConfigError(f"valid_frac must be in [0, 1), got {self.valid_frac!r}")

    def gradient_problem(self, data: Interactions, *, seed: int | None = 0) -> GradientProblem:
        """A fresh copy of this estimator, set up on ``data`` and not trained: its module
        and inputs, for the learning-rate finder (:func:`collabkit.train.lr_find.lr_find`).

        ``self`` is not changed. ``seed=None`` uses ``random_state``.
        """
        est = type(self)(**self.get_params())
        est._validate()
        est._fit_common(data)
        est.seed_ = resolve_seed(seed if seed is not None else est.random_state)
        est.device_ = resolve_device(est.device)
        module = est._build_module(torch_generator(est.seed_)).to(est.device_)
        u = est.user_vocab_.index(data.user_vocab.ids(data.users))
        i = est.item_vocab_.index(data.item_vocab.ids(data.items))
        y = torch.as_tensor(data.ratings.astype(np.float32), device=est.device_)
        return GradientProblem(module, est._inputs(u, i), y, int(est.batch_size),
                               est._wd_value(), int(est.seed_), est.device_)

    def _inputs(self, u: np.ndarray, i: np.ndarray) -> tuple[torch.Tensor, ...]:
        dev = self.device_
        return (torch.as_tensor(u, device=dev), torch.as_tensor(i, device=dev))

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self.seed_ = resolve_seed(self.random_state)
        self.device_ = resolve_device(self.device)
        r = data.ratings.astype(np.float32, copy=False)
        carve = carve_validation(u, i, r, user_vocab=self.user_vocab_,
                                 item_vocab=self.item_vocab_, valid=valid,
                                 valid_frac=self.valid_frac, rng=numpy_rng(self.seed_))
        valid_idx = carve.valid
        if carve.valid_rows is not None:
            rows = carve.train_rows
            u, i, r = u[rows], i[rows], r[rows]
        self.module_ = self._build_module(torch_generator(self.seed_)).to(self.device_)
        start_loss = self._untrained_loss(u, i, r)
        result = self._train(u, i, r, valid_idx)
        self.history_ = [h.row() for h in result.history]
        self.fit_seconds_ = result.fit_seconds
        if result.history:  # before any closed-form pass meets diverged factors
            last = result.history[-1]
            check_not_diverged(last.train_loss, last.epoch, r,
                               remedy(getattr(self, "lr_", self.lr), self._wd_value()), start_loss)
        self.n_valid_ = 0 if valid_idx is None else int(len(valid_idx[2]))
        self.module_.eval()
        self.fit_seconds_ += self._after_train(u, i, r)
        self.valid_rmse_ = None
        if valid_idx is not None and len(valid_idx[2]):
            err = self._predict_idx(valid_idx[0], valid_idx[1]) - valid_idx[2]
            self.valid_rmse_ = float(np.sqrt(np.mean(err * err)))
        self._check_beats_baseline((u, i, r), valid_idx, self.valid_rmse_)

    @torch.no_grad()
    def _untrained_loss(self, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> float:
        """The untrained module's MSE on (up to 20,000) training rows, in eval mode."""
        n = min(len(r), 20_000)
        pred = self.module_.eval()(*self._inputs(u[:n], i[:n])).double().cpu().numpy()
        return float(np.mean((pred - r[:n]) ** 2)) if n else 0.0

    def _after_train(self, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> float:
        """Work after the last epoch on the training rows (none here); returns its seconds."""
        return 0.0

    def _train(self, u: np.ndarray, i: np.ndarray, r: np.ndarray,
               valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> TrainResult:
        """Train ``self.module_`` on dense training indices; ``valid`` rows are monitored.

        The default runs :func:`~collabkit.train.loop.fit_one_cycle` (AdamW, one cycle) on
        :meth:`_inputs`; subclasses with their own solver override it.
        """
        dev = self.device_
        valid_t = None
        if valid is not None:
            valid_t = (self._inputs(valid[0], valid[1]), torch.as_tensor(valid[2], device=dev))
        return fit_one_cycle(
            self.module_, self._inputs(u, i), torch.as_tensor(r, device=dev),
            epochs=int(self.epochs), lr_max=float(self.lr), wd=float(self.wd),
            batch_size=int(self.batch_size), generator=self._shuffle_generator(),
            valid=valid_t, callback=self._callback(),
            optimizer=str(getattr(self, "optimizer", "adamw")),
        )

    def _wd_value(self) -> float:
        """The weight decay in use (BiasedMF's ``wd="auto"``: the strength it chose)."""
        return float(self.wd)

    def _callback(self) -> Callable[[EpochStats], None] | None:
        return getattr(self, "callback", None)

    def _shuffle_generator(self) -> torch.Generator:
        """The batch-shuffle stream: its own child of ``seed_`` (:mod:`collabkit.seeds`)."""
        assert self.seed_ is not None, "fit() sets seed_ before training"
        return torch_generator(derive_seed(self.seed_, "shuffle"), self.device_)

    @torch.no_grad()
    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(u), 262144):
            out.append(self.module_(*self._inputs(u[s : s + 262144], i[s : s + 262144])).cpu())
        return torch.cat(out).double().numpy()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"module.{k}": v.detach().cpu() for k, v in self.module_.state_dict().items()}
        if getattr(self, "user_prior_mean_", None) is not None:  # from a final user pass
            out["fold.user_prior_mean"] = torch.as_tensor(self.user_prior_mean_)
            out["fold.user_prior_precision"] = torch.as_tensor(self.user_prior_precision_)
        return out

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.device_ = load_device(self.device)
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self.fit_seconds_ = extra.get("fit_seconds")
        self.n_valid_ = extra.get("n_valid", 0)
        self.valid_rmse_ = extra.get("valid_rmse")
        self.user_prior_mean_ = self.user_prior_precision_ = None
        if "fold.user_prior_mean" in tensors:
            self.user_prior_mean_ = tensors["fold.user_prior_mean"].double().numpy()
            self.user_prior_precision_ = tensors["fold.user_prior_precision"].double().numpy()
        module = self._build_module(torch_generator(0))
        state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        module.load_state_dict(state)
        self.module_ = module.to(self.device_).eval()

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed_, "history": self.history_, "fit_seconds": self.fit_seconds_,
                "n_valid": self.n_valid_, "valid_rmse": getattr(self, "valid_rmse_", None)}

    def _build_module(self, generator: torch.Generator) -> torch.nn.Module:
        raise NotImplementedError
