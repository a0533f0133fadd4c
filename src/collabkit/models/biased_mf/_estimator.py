"""BiasedMF: the estimator around :class:`~collabkit.models.biased_mf._module.DotProductBias`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from collabkit.errors import ConfigError, ModelFitError
from collabkit.models import capabilities as cap
from collabkit.models._adamw import ADAMW_REG_C
from collabkit.models._torch import TorchRecommender
from collabkit.models.biased_mf._autoreg import AutoRegMixin
from collabkit.models.biased_mf._module import DotProductBias
from collabkit.models.biased_mf._packed import auto_batch_size
from collabkit.models.biased_mf._trainer import fit_biased_mf
from collabkit.runtime import threads
from collabkit.train.loop import fit_one_cycle
from collabkit.train.rowsolve import GN_STEPS, RowPenalty, population_pass, train_noise_variance
from collabkit.train.runner import EpochStats, TrainResult, remedy

__all__ = ["BiasedMF", "ADAMW_REG_C"]


class BiasedMF(AutoRegMixin, TorchRecommender, cap.FactorModel):
    r"""Latent factors and biases learned by gradient descent (the chapter's DotProductBias).

    .. math::

        \hat r_{ui} = \operatorname{sigmoid\_range}(p_u^\top q_i + b_u + b_i,\; y_{lo}, y_{hi})

    trained on MSE with a one-cycle learning-rate schedule by one of two optimizers:

    ``optimizer="adam"`` (default, fast)
        Adam on a hand-written gradient over large batches, with an L2 penalty paid per
        occurrence of a row in a batch (:mod:`collabkit.models.biased_mf._packed`), which minimises

        .. math::

            \frac1N \sum_{(u,i)} (\hat r_{ui} - r_{ui})^2
            + \lambda \big(c_u \lVert (p_u, b_u) \rVert^2 + c_i \lVert (q_i, b_i) \rVert^2\big),
            \qquad c_u = \sqrt{\bar n / n_u}

        (:math:`n_u` the user's training rows, :math:`\bar n` their mean; ``wd`` is
        :math:`\lambda`). On MovieLens 100k (u1) the five epochs reach test RMSE 0.918 in about
        0.1 s, 0.914 after the closed-form passes of ``refit_users`` (about 0.4 s in all).
    ``optimizer="adamw"`` (the chapter)
        autograd + ``torch.optim.AdamW`` with decoupled weight decay ``wd`` on every row at
        every step (:func:`~collabkit.train.loop.fit_one_cycle`). The chapter's recipe is
        ``BiasedMF(optimizer="adamw", lr=5e-3, batch_size=64)``: RMSE 0.922 on u1 in 4–5 s.
        Its decay grows with the number of steps, so it loses accuracy with large batches.

    Parameters
    ----------
    n_factors : int, default 50
        Latent dimension.
    epochs : int, default 5
    lr : float, default 1e-2
        Peak learning rate of the one-cycle schedule (at ``batch_size``; see
        ``auto_batch``).
    wd : float or "auto", default "auto"
        ``"adam"``: the per-occurrence L2 penalty :math:`\lambda`. ``"adamw"``: decoupled
        weight decay (fastai's ``wd``). ``"auto"`` chooses it on the validation rows from
        0.1 x (rating variance / 1.25) times 1, 3, 9, 27
        (:mod:`collabkit.models.biased_mf._autoreg`; ``wd_``, ``wd_tried_``, ``chosen_``).
    batch_size : int, default 1024
        Rows per step (the chapter used 64 with ``"adamw"``).
    optimizer : {"adam", "adamw", "sgd"}, default "adam"
        ``"sgd"``: plain SGD with one-cycle momentum and ``wd`` as L2, the chapter's first
        training loop (:func:`~collabkit.train.loop.fit_one_cycle`).
    auto_batch : bool, default True
        ``"adam"`` only: halve or double the batch from ``batch_size`` until an epoch takes
        32 to 96 steps, growing ``lr`` as the cube root of the batch when it grows
        (:func:`~collabkit.models.biased_mf._packed.auto_batch_size`). On MovieLens 100k the
        batch stays 1,024; on 1M ratings it becomes 16,384. The batch and learning rate used are
        stored in ``batch_size_`` and ``lr_``. ``False`` uses ``batch_size`` and ``lr`` as given.
    y_range : "auto", None or (low, high), default "auto"
        ``"auto"`` gives ``(lo - span / 4, hi + span / 8)`` for a rating scale ``[lo, hi]``,
        i.e. ``(0, 5.5)`` for 1–5 stars and ``(-15, 12.5)`` for -10..+10.
    valid_frac : float, default 0.1
        Share of the training rows held out to report validation RMSE after each epoch
        (ignored when ``fit`` is given ``valid``) to choose ``wd`` and check the model against
        the bias baseline; the epochs never see them, the final closed-form passes do.
    device : str, default "auto"
        ``"auto"`` picks CUDA when available.
    random_state : int or None
        Seed for initialisation, the validation carve and shuffling.
    refit_users : bool, default True
        After the last epoch, two closed-form passes: every item row, then every user row,
        is replaced by its MAP estimate from its training ratings against the other side's
        table, under a Gaussian prior fitted to the rows the epochs produced and rating
        noise of the last training MSE. The user pass is exactly what fold-in does for a new
        user (:func:`~collabkit.recommend.foldin.fold_in_user`, ``reg="population"``; the
        prior is stored as ``user_prior_mean_`` and ``user_prior_precision_``), so a user in
        training and a new user with the same ratings get the same vector, and folding a
        trained user's training ratings back in gives their row. Five epochs of gradient
        descent leave the rows short of any optimum (two seeds' user rows predict 0.19 RMSE
        apart on ml-100k u1); the passes make them a function of the data. Test RMSE:
        ml-100k u1 0.918 -> 0.914 (u1-u5 0.9083 -> 0.9055), ml-latest-small unchanged (0.8475
        -> 0.8473, three random splits). The passes cost more than the epochs on small data
        (ml-100k: ~0.25 s against ~0.07 s): each row's solve is a small batched Cholesky.
    callback : callable or None
        Called with :class:`~collabkit.train.loop.EpochStats` after each epoch.
    kernel : {"auto", "numba", "torch"}, default "auto"
        ``"adam"`` only: the batch gradient. ``"auto"`` uses the fused numba CPU kernel on CPU
        (one BiasedMF epoch over 1M ratings at k = 64: ~0.1 s against ~0.25 s) and torch on
        CUDA or when numba is missing; ``"torch"`` forces the torch kernel. Both compute the
        same gradient (:func:`~collabkit.models.biased_mf._trainer.fit_biased_mf`).
    fallback : bool, default True
        When the model scores worse than the damped-bias baseline on the validation rows,
        warn and serve the baseline (``serving_ == "baseline"``); ``False`` keeps the model.

    Examples
    --------
    >>> import collabkit
    >>> data = collabkit.load_dataset("ml-latest-small")      # doctest: +SKIP
    >>> model = collabkit.BiasedMF(random_state=0).fit(data)  # doctest: +SKIP
    >>> model.recommend(1, n=5)                               # doctest: +SKIP
    """

    kind = "dot"
    module_: DotProductBias  # _build_module's kind of torch.nn.Module
    _optimizers = ("adam", "adamw", "sgd")
    fold_in_exactness = cap.FoldInExactness("population", 1e-3, "refit_users' user pass "
                                            "solved this very problem, with its stored prior")

    def __init__(self, *, n_factors: int = 50, epochs: int = 5, lr: float = 1e-2,
                 wd: float | Literal["auto"] = "auto", batch_size: int = 1024,
                 optimizer: Literal["adam", "adamw", "sgd"] = "adam",
                 auto_batch: bool = True,
                 y_range: str | tuple[float, float] | None = "auto", valid_frac: float = 0.1,
                 device: str = "auto", random_state: int | None = None,
                 refit_users: bool = True,
                 callback: Callable[[EpochStats], None] | None = None,
                 kernel: Literal["auto", "numba", "torch"] = "auto", fallback: bool = True) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.lr = lr
        self.wd = wd
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.auto_batch = auto_batch
        self.y_range = y_range
        self.valid_frac = valid_frac
        self.device = device
        self.random_state = random_state
        self.refit_users = refit_users
        self.callback = callback
        self.kernel = kernel
        self.fallback = fallback

    def _validate(self) -> None:
        super()._validate()
        if not isinstance(self.refit_users, bool | np.bool_):
            raise ConfigError(f"refit_users must be True or False, got {self.refit_users!r}")
        if self.kernel not in ("auto", "numba", "torch"):
            raise ConfigError(f"kernel must be 'auto', 'numba' or 'torch', got {self.kernel!r}")
        for name in ("auto_batch", "fallback"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def _train(self, u: np.ndarray, i: np.ndarray, r: np.ndarray,
               valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> TrainResult:
        dev = self.device_
        self.batch_size_, self.lr_ = int(self.batch_size), float(self.lr)
        if self.optimizer != "adam":  # "adamw" or "sgd": autograd, fit_one_cycle
            valid_t = None
            if valid is not None:
                valid_t = (self._inputs(valid[0], valid[1]), torch.as_tensor(valid[2], device=dev))
            return self._search_wd(lambda wd, first: fit_one_cycle(
                self.module_, self._inputs(u, i), torch.as_tensor(r, device=dev),
                epochs=int(self.epochs), lr_max=self.lr_, wd=wd, batch_size=self.batch_size_,
                generator=self._shuffle_generator(), valid=valid_t,
                callback=self._callback() if first else None,
                optimizer=str(self.optimizer)), r, valid is not None)
        if self.auto_batch:
            self.batch_size_, self.lr_ = auto_batch_size(len(r), self.batch_size_, self.lr_)

        def idx(a: np.ndarray) -> torch.Tensor:  # read-only arrays (Interactions) are copied
            return torch.as_tensor(a if a.flags.writeable else a.copy(), device=dev)

        valid_p = None if valid is None else (idx(valid[0]), idx(valid[1]), idx(valid[2]))
        return self._search_wd(lambda wd, first: fit_biased_mf(
            self.module_, idx(u), idx(i), idx(r), epochs=int(self.epochs), lr_max=self.lr_,
            wd=wd, batch_size=self.batch_size_, generator=self._shuffle_generator(),
            valid=valid_p, callback=self._callback() if first else None, kernel=self.kernel),
            r, valid is not None)

    @torch.no_grad()
    def _after_train(self, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> float:
        """The final passes of ``refit_users``: items, then users (see the class docstring)."""
        self.user_prior_mean_ = self.user_prior_precision_ = None
        if not self.refit_users:
            return 0.0
        t0 = time.perf_counter()
        m = self.module_
        noise = train_noise_variance(self.history_)
        n_threads = 1 if self.device_.type == "cpu" else None
        items = (m.item_factors.weight, m.item_bias.weight)
        users = (m.user_factors.weight, m.user_bias.weight)
        g = float(m.global_bias)
        with threads(n_threads):
            # the item pass only needs to be good; the user pass must be fold-in's solve
            X, _, _ = self._pass(items, users, i, u, r, g, m.y_range, noise, n_iter=1)
            items[0].copy_(X[:, :-1])
            items[1].copy_(X[:, -1:])
            X, mean, precision = self._pass(users, items, u, i, r, g, m.y_range, noise, GN_STEPS)
            users[0].copy_(X[:, :-1])
            users[1].copy_(X[:, -1:])
        self.user_prior_mean_, self.user_prior_precision_ = mean, precision
        return time.perf_counter() - t0

    def factor_tables(self) -> cap.FactorTables:
        """The DotProductBias tables (sigmoid range, global bias in logit space)."""
        self.check_fitted()
        if self._serves_baseline():
            return self._baseline_tables()
        m = self.module_
        return cap.FactorTables(m.user_factors.weight, m.user_bias.weight[:, 0],
                            m.item_factors.weight, m.item_bias.weight[:, 0],
                            float(m.global_bias), m.y_range, None)

    def foldin_penalty(self, folded: cap.Side, center: np.ndarray,
                       rated: cap.FoldRows | None = None) -> RowPenalty | None:
        r"""The training penalty of one row: ``"adam"`` minimises :math:`\sum_i (r_i -
        \hat r_i)^2 + \mathrm{wd}\, c_u n_u \lVert x\rVert^2`, :math:`c_u = (\bar n /
        n_u)^{1/2}`: a ridge :math:`\mathrm{wd}\,\bar n^{1/2} n_u^{1/2}` (:math:`\bar n` the
        mean rows per user or item); ``"adamw"``: :meth:`adamw_reg_scale`."""
        if self.optimizer != "adam":  # "adamw" (and "sgd", approximately)
            return self.adamw_penalty(center)
        alpha = 0.5  # the exponent of train.sparse.row_penalty_weights
        vocab = self.user_vocab_ if folded == "users" else self.item_vocab_
        mean_count = max(self.n_fit_rows(), 1.0) / max(1, len(vocab))
        return RowPenalty("count", self._wd_value() * mean_count**alpha, center,
                          power=1.0 - alpha)

    def _pass(self, *args: Any, **kw: Any) -> tuple[torch.Tensor, Any, Any]:
        """``population_pass(*args)``; factors it cannot solve against mean training diverged."""
        try:
            out = population_pass(*args, **kw)
        except (torch.linalg.LinAlgError, ValueError) as e:
            why = f"({type(e).__name__}: {str(e).splitlines()[0]})"
        else:
            if bool(torch.isfinite(out[0]).all()):
                return out
            why = "(it produced NaN or infinite rows)"
        scale = max(float(t.abs().max()) for t in (*args[0], *args[1]))
        raise ModelFitError(
            f"training diverged: the closed-form pass after the epochs failed {why}; the "
            f"trained factors reach {scale:.3g}. {remedy(self.lr_, self._wd_value())}")

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "batch_size_used": getattr(self, "batch_size_", None),
                "lr_used": getattr(self, "lr_", None), **self._chosen_state()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        super()._load_state(tensors, extra)
        self.batch_size_ = extra.get("batch_size_used", self.batch_size)
        self.lr_ = extra.get("lr_used", self.lr)
        self._load_chosen(extra)

    def _build_module(self, generator: torch.Generator) -> DotProductBias:
        m = DotProductBias(len(self.user_vocab_), len(self.item_vocab_), int(self.n_factors),
                           self._resolve_y_range())
        with torch.no_grad():
            m.user_factors.weight.normal_(0.0, 0.01, generator=generator)
            m.item_factors.weight.normal_(0.0, 0.01, generator=generator)
        return m

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        if self._serves_baseline():  # the safety net of the wd search (_autoreg)
            return self._baseline_scores(u)
        m = self.module_
        ut = torch.as_tensor(u, device=self.device_)
        # one (users, items) buffer, updated in place: top-N over large catalogues scores
        # blocks of 1024 users, and every temporary of that size costs hundreds of MB
        raw = torch.addmm(m.item_bias.weight.T, m.user_factors(ut), m.item_factors.weight.T)
        raw.add_(m.user_bias(ut)).add_(m.global_bias)
        if m.y_range is None:
            return raw
        lo, hi = m.y_range
        return raw.sigmoid_().mul_(hi - lo).add_(lo)
