"""SVDpp: Koren's SVD++ (explicit factors plus implicit feedback), vectorised in torch."""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models import capabilities as cap
from collabkit.models._safety import SafetyNetMixin, search_strength, strength_candidates
from collabkit.models._svdpp_module import SVDppModule, _Bags, implicit_csr, rated_csr
from collabkit.models.base import Recommender
from collabkit.runtime import threads
from collabkit.seeds import derive_seed, numpy_rng, resolve_seed, torch_generator
from collabkit.train.rowsolve import RowPenalty
from collabkit.train.runner import EpochOutcome, TrainResult, check_not_diverged, run_epochs
from collabkit.train.validation import carve_validation

__all__ = ["SVDpp", "SVDppModule"]

#: ``reg="auto"`` scales its first candidate with the ratings' standard deviation
#: (:func:`~collabkit.models._safety.strength_candidates`).
REG_POWER = 0.5


class SVDpp(SafetyNetMixin, Recommender, cap.FactorModel):
    r"""SVD++ (Koren, 2008): biased MF whose user vector adds the items the user rated.

    .. math::

        \hat r_{ui} = \operatorname{clip}\Big(\mu + b_u + b_i + q_i^\top \big(p_u +
        |N(u)|^{-1/2} \textstyle\sum_{j \in N(u)} y_j\big)\Big)

    Fitted by mini-batch Adam with a cosine-annealed learning rate on the MSE plus a
    per-rating L2 penalty (as Surprise's SGD does):
    :math:`\lambda (\lVert p_u\rVert^2 + \lVert q_i\rVert^2 + \lVert z_u\rVert^2)
    + \lambda_b (b_u^2 + b_i^2)` for each rating in the batch. Each batch sums the implicit
    term of its own users only (one weighted bag sum over their rated items), with no Python
    loop over users.

    The defaults were chosen on validation rows carved from the ml-100k ``u1.base`` and
    ``u2.base`` (about 0.906 there; Bayesian :class:`~collabkit.models.bpmf._estimator.BayesianMF`
    reaches 0.877 on the same rows).

    Parameters
    ----------
    n_factors : int, default 30
    epochs : int, default 20
    lr : float, default 5e-3
        Initial Adam learning rate, annealed by cosine to ``lr / 100``.
    reg : float or "auto", default "auto"
        :math:`\lambda`, the L2 penalty on factors per rating. ``"auto"`` chooses it on the
        validation rows from 0.1 x (rating sd / 1.25^0.5) times 1, 3, 9, 27, stopping at
        the first that does not improve (:mod:`collabkit.models._safety`; ``reg_``,
        ``reg_tried_``, ``chosen_``); 0.1 on MovieLens 100k. Without validation rows
        (``valid_frac=0``) it is the first candidate.
    reg_bias : float, default 0.01
        :math:`\lambda_b`, the L2 penalty on biases per rating.
    batch_size : int, default 2048
    init_std : float, default 0.01
        Standard deviation of the normal initialisation of ``p``, ``q`` and ``y``.
    clip : bool, default True
        Clip predictions to the training rating range.
    n_threads : int or None, default 1
        Torch threads while training (restored afterwards); ``None`` keeps torch's setting.
    valid_frac : float, default 0.1
        Share of the training rows held out (ignored when ``fit`` is given ``valid``) to
        choose ``reg`` and to check the model against the damped-bias baseline. Their items
        are left out of the implicit term too while they validate. Once chosen, the model
        is trained again on every row (``n_final_pass_rows_``), so a carve costs one more
        run of the epochs (plus one per extra candidate of ``reg="auto"``).
    fallback : bool, default True
        When the model scores worse than the damped-bias baseline on the validation rows,
        warn (:class:`~collabkit.errors.ModelFitWarning`) and serve the baseline's
        predictions, rankings and factor tables (``serving_ == "baseline"``); ``False``
        keeps the model. On the sparse long-tail set of ``benchmarks/defaults.py`` (85 % of
        items with 1-3 ratings) plain SVD++ loses to the baseline (issue 14).
    random_state : int or None
        Seed for initialisation, the validation carve and shuffling.

    Attributes
    ----------
    module_ : SVDppModule
    user_factors_ : torch.Tensor
        The effective user vectors :math:`p_u + z_u`, ``(n_users, k)``.
    item_factors_, user_bias_, item_bias_ : torch.Tensor
        :math:`q_i`, :math:`b_u`, :math:`b_i`. With ``user_factors_`` they make SVD++ a
        linear factor model to :meth:`fold_in` (which fits a new user's :math:`p_u + z_u`
        directly) and to :meth:`similar_items`.
    history_ : list of dict
        One :class:`~collabkit.train.runner.EpochStats` per epoch: ``epoch``, ``train_loss``
        (MSE), ``valid_rmse`` (None unless ``fit`` got ``valid``), ``lr``, ``seconds``.

    """

    kind = "svdpp"
    fold_in_exactness = cap.FoldInExactness(
        "population", 0.03, "fold-in fits the effective vector p_u + z_u under a Gaussian "
        "prior fitted to the trained vectors; 'matched' (SVD++'s own objective) reproduces "
        "only converged fits, and the contract's few Adam steps are far from converged")

    _strength_name = "reg"

    def __init__(self, *, n_factors: int = 30, epochs: int = 20, lr: float = 5e-3,
                 reg: float | Literal["auto"] = "auto", reg_bias: float = 0.01,
                 batch_size: int = 2048, init_std: float = 0.01, clip: bool = True,
                 n_threads: int | None = 1, valid_frac: float = 0.1, fallback: bool = True,
                 random_state: int | None = None) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.batch_size = batch_size
        self.init_std = init_std
        self.clip = clip
        self.n_threads = n_threads
        self.valid_frac = valid_frac
        self.fallback = fallback
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _validate(self) -> None:
        for name in ("n_factors", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "init_std"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be a positive number, got {v!r}")
        for name in ("reg", "reg_bias"):
            v = getattr(self, name)
            if name == "reg" and v == "auto":
                continue
            if isinstance(v, str) or not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be >= 0" + (" or 'auto'" if name == "reg"
                                                           else "") + f", got {v!r}")
        nt = self.n_threads
        if nt is not None and (not isinstance(nt, int | np.integer) or nt < 1):
            raise ConfigError(f"n_threads must be a positive integer or None, got {nt!r}")
        if not 0 <= self.valid_frac < 1:
            raise ConfigError(f"valid_frac must be in [0, 1), got {self.valid_frac!r}")
        if not isinstance(self.fallback, bool | np.bool_):
            raise ConfigError(f"fallback must be True or False, got {self.fallback!r}")

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        """Carve, choose ``reg``, check against the baseline, train again on every row."""
        self._validate()
        t0 = time.perf_counter()
        self.seed_ = resolve_seed(self.random_state)
        self._start_serving_model()
        r = data.ratings
        carve = carve_validation(u, i, r, user_vocab=self.user_vocab_,
                                 item_vocab=self.item_vocab_, valid=valid,
                                 valid_frac=float(self.valid_frac),
                                 rng=numpy_rng(derive_seed(self.seed_, "valid")))
        rows = carve.train_rows
        train = (u[rows], i[rows], r[rows])
        self.n_valid_ = carve.n_valid
        with threads(self.n_threads):
            result = self._choose_reg(train, carve.valid)
            self.history_ = [h.row() for h in result.history]
            self.valid_rmse_ = result.history[-1].valid_rmse if result.history else None
            self._check_beats_baseline(train, carve.valid, self.valid_rmse_)
            self._served_valid_rmse()
            self.n_final_pass_rows_ = 0
            if carve.valid_rows is not None and not self._serves_baseline():
                self._train_once((u, i, r), None, float(self.reg_))  # every row
                self.n_final_pass_rows_ = int(len(u))
        self.implicit_matrix_, self.implicit_matrix_t_ = implicit_csr(
            self.seen_indptr_, self.seen_indices_, len(self.item_vocab_))
        self.module_.eval()
        self._cache()
        self.fit_seconds_ = time.perf_counter() - t0

    def _choose_reg(self, train: tuple[np.ndarray, np.ndarray, np.ndarray],
                    valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> TrainResult:
        """Train with ``reg`` as given, or with each ``"auto"`` candidate; keep the best."""
        auto = isinstance(self.reg, str)
        if not auto or valid is None or not len(valid[2]):
            self.reg_ = strength_candidates(train[2], REG_POWER)[0] if auto else float(self.reg)
            self.reg_tried_: list[list[float | None]] = []
            return self._train_once(train, valid, self.reg_)
        found = search_strength(strength_candidates(train[2], REG_POWER),
                                lambda reg, first: self._train_once(train, valid, reg),
                                None, lambda: self.module_)
        self.reg_, self.reg_tried_ = found.value, found.tried
        self._cache()
        return found.result

    def _train_once(self, train: tuple[np.ndarray, np.ndarray, np.ndarray],
                    valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                    reg: float) -> TrainResult:
        """Fresh factors (the same for every call), ``epochs`` of Adam on rows ``train``;
        their items make the implicit term. Sets ``module_``."""
        u, i, r = train
        k, n_items = int(self.n_factors), len(self.item_vocab_)
        m = SVDppModule(len(self.user_vocab_), n_items, k, self.global_mean_)
        assert self.seed_ is not None, "fit() sets seed_ before training"
        rng = numpy_rng(self.seed_)
        with torch.no_grad():
            for p in (m.p, m.q, m.y):
                p.copy_(torch.as_tensor(rng.normal(0.0, self.init_std, p.shape)))
        self.module_ = m
        indptr, indices = rated_csr(u, i, len(self.user_vocab_))
        self.implicit_matrix_, self.implicit_matrix_t_ = implicit_csr(indptr, indices, n_items)
        bags = _Bags(indptr, indices, self.implicit_matrix_, self.implicit_matrix_t_)
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        y = torch.tensor(r, dtype=torch.float32)
        vr_t = None if valid is None else torch.as_tensor(valid[2], dtype=torch.float64)
        n, bs, epochs = len(y), int(self.batch_size), int(self.epochs)
        opt = torch.optim.Adam(m.parameters(), lr=float(self.lr))
        steps = epochs * math.ceil(n / bs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=self.lr / 100)
        gen = torch_generator(derive_seed(self.seed_, "shuffle"))
        t0 = time.perf_counter()

        def epoch_fn(epoch: int) -> EpochOutcome:
            perm = torch.randperm(n, generator=gen)
            loss_sum = torch.zeros((), dtype=torch.float64)
            for s in range(0, n, bs):
                idx = perm[s : s + bs]
                mse, loss = self._batch_loss(m, ut[idx], it[idx], y[idx], bags, reg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += mse.detach().double() * len(idx)
            train_loss = loss_sum.item() / n
            vr = None
            if valid is not None and vr_t is not None and len(vr_t) \
                    and math.isfinite(train_loss):
                self._cache()
                pred = torch.as_tensor(self._model_predict(valid[0], valid[1]))
                vr = float((pred - vr_t).square().mean().sqrt())
            return EpochOutcome(train_loss, vr, float(sched.get_last_lr()[0]))

        result = run_epochs(epoch_fn, epochs, remedy=self._remedy(reg))
        if result.history:
            check_not_diverged(result.history[-1].train_loss, epochs, r, self._remedy(reg))
        result.fit_seconds = time.perf_counter() - t0
        return result

    def _reg_value(self) -> float:
        """The strength used: the chosen one after ``fit``, else ``reg`` itself."""
        used = getattr(self, "reg_", None)
        return float(used) if used is not None else float(
            strength_candidates(np.zeros(0))[0] if isinstance(self.reg, str) else self.reg)

    def _remedy(self, reg: float) -> str:
        return (f"Lower the learning rate (lr={self.lr:g}) or raise the regularisation "
                f"(reg={reg:g}).")

    def _batch_loss(self, m: SVDppModule, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor,
                    bags: _Bags, reg: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch MSE and the MSE plus the per-rating L2 penalty.

        :math:`z_u` is computed for the batch's own users only (issue 14: it used to be every
        user's, over every rating, at every batch), unless they hold most of the ratings.
        """
        users, inverse = torch.unique(u, return_inverse=True)
        zr = bags.implicit(m, users)[inverse]  # z_u of each rating's user
        pu = m.p[u] + zr
        mse = ((pu * m.q[i]).sum(-1) + m.b_user[u] + m.b_item[i] + m.mean - y).square().mean()
        penalty = (reg * (m.p[u].square().sum(1) + m.q[i].square().sum(1)
                          + zr.square().sum(1))
                   + float(self.reg_bias) * (m.b_user[u].square() + m.b_item[i].square()))
        return mse, mse + penalty.mean()

    @torch.no_grad()
    def _cache(self) -> None:
        """User vectors :math:`p_u + z_u`, computed once for scoring."""
        m = self.module_
        self.user_factors_ = m.p.detach() + self.implicit_matrix_ @ m.y.detach()
        self.item_factors_ = m.q.detach()
        self.user_bias_ = m.b_user.detach()
        self.item_bias_ = m.b_item.detach()

    # ------------------------------------------------------------------ capabilities
    def factor_tables(self) -> cap.FactorTables:
        """Effective user vectors :math:`p_u + z_u`, linear, clipped only when ``clip``."""
        self.check_fitted()
        if self._serves_baseline():
            return self._baseline_tables()
        lo, hi = self.rating_range_
        return cap.FactorTables(self.user_factors_, self.user_bias_, self.item_factors_,
                            self.item_bias_, float(self.module_.mean),
                            None, (lo, hi) if self.clip and lo < hi else None)

    def foldin_penalty(self, folded: cap.Side, center: np.ndarray,
                       rated: cap.FoldRows | None = None) -> RowPenalty:
        r"""Training's per-rating L2: each of a row's :math:`n` ratings paid ``reg`` on
        :math:`p_u` and ``reg_bias`` on :math:`b_u`, so :math:`\Lambda = n\,\mathrm{diag}
        (\lambda, \dots, \lambda, \lambda_b)`. Fold-in fits the effective vector
        :math:`v = p_u + z_u`, so for users the centre is :math:`[z_u; 0]`, with :math:`z_u =
        |N(u)|^{-1/2} \sum_{j \in N(u)} y_j` over the rated items: :math:`\lVert p_u
        \rVert^2 = \lVert v - z_u \rVert^2` (``center`` is then not used; training's
        :math:`\lambda \lVert z_u \rVert^2` does not depend on the row)."""
        weights = np.append(np.full(int(self.n_factors), self._reg_value()),
                            float(self.reg_bias))
        if folded == "users" and rated is not None:
            y = self.module_.y.detach().double().cpu().numpy()
            z = np.zeros((rated.n_rows, y.shape[1]))
            np.add.at(z, rated.rows, y[rated.other])
            counts = np.bincount(rated.rows, minlength=rated.n_rows)
            z /= np.sqrt(np.maximum(counts, 1))[:, None]
            center = np.column_stack([z, np.zeros(rated.n_rows)])
        return RowPenalty("count", 1.0, center, power=1.0, weights=weights)

    # ------------------------------------------------------------------ scoring
    def _finish(self, raw: torch.Tensor) -> torch.Tensor:
        if not self.clip:
            return raw
        lo, hi = self.rating_range_
        return raw.clamp(lo, hi)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        if self._serves_baseline():  # the safety net (collabkit.models._safety)
            return self._baseline_idx(u, i)
        return self._model_predict(u, i)

    @torch.no_grad()
    def _model_predict(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        m = self.module_
        ut, it = torch.as_tensor(u), torch.as_tensor(i)
        raw = ((self.user_factors_[ut] * self.item_factors_[it]).sum(-1) + self.user_bias_[ut]
               + self.item_bias_[it] + m.mean)
        return self._finish(raw).double().numpy()

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        if self._serves_baseline():
            return self._baseline_scores(u)
        m = self.module_
        ut = torch.as_tensor(u)
        raw = (self.user_factors_[ut] @ self.item_factors_.T + self.user_bias_[ut, None]
               + self.item_bias_[None, :] + m.mean)
        return self._finish(raw)

    # ------------------------------------------------------------------ persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"module.{k}": v.detach().cpu() for k, v in self.module_.state_dict().items()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        n_users, k = state["p"].shape
        m = SVDppModule(n_users, state["q"].shape[0], k, float(state["mean"]))
        m.load_state_dict(state)
        self.module_ = m.eval()
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self.fit_seconds_ = extra.get("fit_seconds")
        self.n_valid_ = extra.get("n_valid", 0)
        self.valid_rmse_ = extra.get("valid_rmse")
        self._load_chosen(extra)
        self.implicit_matrix_, self.implicit_matrix_t_ = implicit_csr(
            self.seen_indptr_, self.seen_indices_, len(self.item_vocab_))
        self._cache()

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed_, "history": self.history_, "fit_seconds": self.fit_seconds_,
                "n_valid": self.n_valid_, "valid_rmse": self.valid_rmse_,
                **self._chosen_state()}

