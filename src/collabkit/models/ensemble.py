"""Ensemble: a linear blend of collabkit models, weighted on rows held out from training."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary
from collabkit.errors import ConfigError, DataError
from collabkit.models import registry
from collabkit.models.base import Recommender
from collabkit.seeds import derive_seed, numpy_rng, resolve_seed

__all__ = ["Ensemble"]

#: member settings used unless ``member_params`` says otherwise: BiasedMF would otherwise
#: hold 10 % of its rows out for monitoring only
# the ensemble holds out its own rows: members that carve more would learn from fewer
_MEMBER_DEFAULTS: dict[str, dict[str, Any]] = {"dot": {"valid_frac": 0.0},
                                               "svdpp": {"valid_frac": 0.0}}


class Ensemble(Recommender):
    r"""A linear blend of member models, its weights fitted on rows carved from training.

    .. math::

        \hat r_{ui} = \operatorname{clip}\Big(w_0 + \textstyle\sum_{m=1}^{M} w_m\,
        \hat r^{(m)}_{ui}\Big)

    ``fit`` holds out a seeded ``valid_frac`` share of the training rows, fits every member on
    the rest, and fits :math:`w` by ridge regression of the held-out ratings on the members'
    predictions (the intercept is not penalised). With ``refit`` (the default) the members
    are then fitted again on all training rows; the test rows of an evaluation are never
    seen. Unknown users or items get each member's baseline, as for any model.

    Parameters
    ----------
    members : tuple of str, default ("bpmf", "svdpp", "dot")
        Model kinds (:class:`~collabkit.models.bpmf.BayesianMF`,
        :class:`~collabkit.models.svdpp.SVDpp`, :class:`~collabkit.models.biased_mf.BiasedMF`);
        each kind may appear once.
    member_params : dict or None
        Constructor arguments per kind, e.g. ``{"bpmf": {"n_factors": 16}}``, over the
        members' own defaults (and ``valid_frac=0`` for ``"dot"``). ``random_state`` is set by
        the ensemble.
    valid_frac : float, default 0.1
        Share of the training rows the weights are fitted on.
    refit : bool, default True
        Refit the members on all training rows after the weights are fitted (twice the
        time); otherwise they keep what they learned from the other ``1 - valid_frac``.
    ridge : float, default 1e-3
        L2 penalty on the weights, per held-out row.
    clip : bool, default True
        Clip blended predictions to the training rating range.
    random_state : int or None
        Seed of the carve; each member gets its own seed, derived from it by name
        (:func:`collabkit.seeds.derive_seed` with ``"member:<kind>"``), so no member's streams
        overlap another's.

    Attributes
    ----------
    members_ : list of Recommender
        The fitted members.
    weights_ : numpy.ndarray
        :math:`(w_0, w_1, \dots, w_M)`.
    history_ : list of dict
        One entry: each member's held-out RMSE, the blend's held-out RMSE by 2-fold
        cross-fitting of the weights, the weights and ``valid_rmse``: the RMSE of the final
        blend on the rows given to ``fit(data, valid)`` (None without them).
    valid_rmse_ : float or None
        The same number.
    fit_seconds_ : float

    Notes
    -----
    On ml-100k the blend has not beaten :class:`~collabkit.models.bpmf._estimator.BayesianMF` alone
    (weights about 0.9 on it; ``benchmarks/results/accuracy.md``), at three times its fit
    time: the Bayesian model already averages hundreds of factorisations. The ensemble has
    no factor table, so :meth:`fold_in` and :meth:`similar_items` raise for it.

    Examples
    --------
    >>> from collabkit.testing.synthetic import planted_low_rank
    >>> data = planted_low_rank(n_users=60, n_items=40, k=2, seed=0).data
    >>> model = Ensemble(members=("bpmf", "dot"), member_params={"bpmf": {"n_samples": 10}},
    ...                  random_state=0).fit(data)
    >>> len(model.weights_)
    3
    """

    kind = "ensemble"

    def __init__(self, *, members: Sequence[str] = ("bpmf", "svdpp", "dot"),
                 member_params: Mapping[str, Mapping[str, Any]] | None = None,
                 valid_frac: float = 0.1, refit: bool = True, ridge: float = 1e-3,
                 clip: bool = True, random_state: int | None = None) -> None:
        self.members = members
        self.member_params = member_params
        self.valid_frac = valid_frac
        self.refit = refit
        self.ridge = ridge
        self.clip = clip
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _validate(self) -> None:
        kinds = list(self.members)
        known = [k for k in registry.kinds() if k != self.kind]
        if not kinds:
            raise ConfigError(f"members is empty; name at least one model kind of {known}")
        for k in kinds:
            if k == self.kind:
                raise ConfigError(f"an ensemble cannot be its own member; pick members of "
                                  f"{known}")
            registry.get(k)  # an unknown kind raises, naming the known ones
        if len(set(kinds)) != len(kinds):
            raise ConfigError(f"members must be distinct kinds, got {kinds}; use "
                              "member_params to configure each one")
        extra = set(self.member_params or {}) - set(kinds)
        if extra:
            raise ConfigError(f"member_params names kinds that are not members: {sorted(extra)}")
        if not 0 < self.valid_frac < 1:
            raise ConfigError(f"valid_frac must be in (0, 1), got {self.valid_frac!r}")
        if not (self.ridge >= 0 and np.isfinite(self.ridge)):
            raise ConfigError(f"ridge must be >= 0, got {self.ridge!r}")

    def _new_members(self, seed: int) -> list[Recommender]:
        out = []
        for kind in self.members:
            cls = registry.get(kind)
            params = {**_MEMBER_DEFAULTS.get(kind, {}), **(self.member_params or {}).get(kind, {})}
            if "random_state" in cls._param_names():
                params["random_state"] = derive_seed(seed, f"member:{kind}")
            out.append(cls(**params))
        return out

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        t0 = time.perf_counter()
        self.seed_ = resolve_seed(self.random_state)
        perm = numpy_rng(self.seed_).permutation(len(data))
        n_valid = max(1, int(round(self.valid_frac * len(data))))
        if n_valid >= len(data):
            raise DataError(f"{len(data)} ratings are too few to hold {self.valid_frac:g} of "
                            "them out for the blend weights")
        fit_rows, valid_rows = np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
        part, held = data.take(fit_rows), data.take(valid_rows)
        users, items = held.user_vocab.ids(held.users), held.item_vocab.ids(held.items)
        self.members_ = [m.fit(part) for m in self._new_members(self.seed_)]
        X = np.column_stack([m.predict_ratings(users, items, clip=False)[0] for m in self.members_])
        y = held.ratings.astype(np.float64)
        self.weights_ = _ridge(X, y, float(self.ridge))
        self.history_ = [{
            "member_valid_rmse": dict(zip(self.members, _rmse(X, y[:, None]).tolist(),
                                          strict=True)),
            "blend_valid_rmse": _cross_fit_rmse(X, y, float(self.ridge), self.rating_range_),
            "weights": self.weights_.tolist(), "n_valid": int(len(y)),
        }]
        if self.refit:
            self.members_ = [m.fit(data) for m in self._new_members(self.seed_)]
        self._index_maps()
        self.fit_seconds_ = time.perf_counter() - t0
        self.valid_rmse_ = None if valid is None else self._valid_rmse(valid)
        self.history_[0]["valid_rmse"] = self.valid_rmse_

    def _valid_rmse(self, valid: Interactions) -> float | None:
        """RMSE of the fitted blend on ``valid`` (rows of unknown ids get the fallback)."""
        if len(valid) == 0:
            return None
        pred, _ = self.predict_ratings(valid.user_vocab.ids(valid.users),
                                       valid.item_vocab.ids(valid.items))
        return float(np.sqrt(np.mean((pred - valid.ratings.astype(np.float64)) ** 2)))

    def _index_maps(self) -> None:
        """Each member's dense index for every ensemble user and item (-1: unknown to it)."""
        self.maps_ = [(m.user_vocab_.index(self.user_vocab_.all_ids),
                       m.item_vocab_.index(self.item_vocab_.all_ids)) for m in self.members_]

    # ------------------------------------------------------------------ scoring
    def _finish(self, raw: np.ndarray | torch.Tensor) -> Any:
        if not self.clip:
            return raw
        lo, hi = self.rating_range_
        return raw.clip(lo, hi)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.full(len(u), float(self.weights_[0]))
        for w, m, (mu, mi) in zip(self.weights_[1:], self.members_, self.maps_, strict=True):
            uu, ii = mu[u], mi[i]
            pred = m._baseline_idx(uu, ii)
            known = (uu >= 0) & (ii >= 0)
            if known.any():
                pred[known] = m._predict_idx(uu[known], ii[known])
            out += w * pred
        return self._finish(out)

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        out = torch.full((len(u), len(self.item_vocab_)), float(self.weights_[0]),
                         dtype=torch.float64)
        for w, m, (mu, mi) in zip(self.weights_[1:], self.members_, self.maps_, strict=True):
            out += w * _member_scores(m, mu[u], mi)
        return self._finish(out).float()

    # ------------------------------------------------------------------ persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"weights": torch.as_tensor(self.weights_)}
        for j, m in enumerate(self.members_):
            base = {"base.user_bias": torch.as_tensor(m.user_bias_base_),
                    "base.item_bias": torch.as_tensor(m.item_bias_base_),
                    "seen.indptr": torch.as_tensor(m.seen_indptr_),
                    "seen.indices": torch.as_tensor(m.seen_indices_), **m._state_tensors()}
            if getattr(m, "seen_ratings_", None) is not None:
                base["seen.ratings"] = torch.as_tensor(m.seen_ratings_)
            out.update({f"member{j}.{k}": v for k, v in base.items()})
        return out

    def _extra_state(self) -> dict[str, Any]:
        members = []
        for m in self.members_:
            same = m.user_vocab_ == self.user_vocab_ and m.item_vocab_ == self.item_vocab_
            members.append({
                "kind": m.kind,
                "params": {k: list(v) if isinstance(v, tuple) else v
                           for k, v in m.get_params().items() if k != "callback"},
                "global_mean": m.global_mean_, "rating_range": list(m.rating_range_),
                "vocabs": None if same else [m.user_vocab_.to_json(), m.item_vocab_.to_json()],
                "extra": m._extra_state(),
            })
        return {"seed": self.seed_, "history": self.history_, "members": members,
                "fit_seconds": self.fit_seconds_}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.weights_ = tensors["weights"].double().numpy()
        self.seed_ = extra.get("seed")
        self.history_ = extra.get("history", [])
        self.fit_seconds_ = extra.get("fit_seconds")
        self.valid_rmse_ = (self.history_ or [{}])[0].get("valid_rmse")
        self.members_ = [self._load_member(j, spec, tensors)
                         for j, spec in enumerate(extra["members"])]
        self._index_maps()

    def _load_member(self, j: int, spec: dict[str, Any],
                     tensors: dict[str, torch.Tensor]) -> Recommender:
        prefix = f"member{j}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["params"].items()}
        m = registry.get(spec["kind"])(**params)
        if spec["vocabs"] is None:
            m.user_vocab_, m.item_vocab_ = self.user_vocab_, self.item_vocab_
        else:
            m.user_vocab_ = Vocabulary.from_json(spec["vocabs"][0])
            m.item_vocab_ = Vocabulary.from_json(spec["vocabs"][1])
        m.global_mean_ = float(spec["global_mean"])
        lo, hi = spec["rating_range"]  # two numbers (checked by io)
        m.rating_range_ = (float(lo), float(hi))
        m.user_bias_base_ = own.pop("base.user_bias").numpy()
        m.item_bias_base_ = own.pop("base.item_bias").numpy()
        m.seen_indptr_ = own.pop("seen.indptr").numpy()
        m.seen_indices_ = own.pop("seen.indices").numpy()
        ratings = own.pop("seen.ratings", None)
        m.seen_ratings_ = None if ratings is None else ratings.numpy()
        m.item_meta_, m.data_fingerprint_, m.n_train_ = None, None, None
        m._load_state(own, spec["extra"])
        return m


def _member_scores(m: Recommender, uu: np.ndarray, mi: np.ndarray) -> torch.Tensor:
    """Member ``m``'s scores of users ``uu`` (its indices) on the ensemble's items ``mi``."""
    base_i = np.where(mi >= 0, m.item_bias_base_[np.maximum(mi, 0)], 0.0)
    base_u = np.where(uu >= 0, m.user_bias_base_[np.maximum(uu, 0)], 0.0)
    lo, hi = m.rating_range_
    out = torch.as_tensor(np.clip(m.global_mean_ + base_u[:, None] + base_i[None, :], lo, hi))
    known_u, known_i = np.flatnonzero(uu >= 0), np.flatnonzero(mi >= 0)
    if len(known_u) and len(known_i):
        scores = m.score_users(uu[known_u]).double().cpu()
        out[np.ix_(known_u, known_i)] = scores[:, torch.as_tensor(mi[known_i])]
    return out


def _ridge(X: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Weights ``(w0, w1..wM)`` of the ridge regression of ``y`` on ``X`` with an intercept."""
    A = np.column_stack([np.ones(len(y)), X])
    penalty = ridge * len(y) * np.eye(A.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(A.T @ A + penalty, A.T @ y)


def _rmse(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((pred - y) ** 2, axis=0))


def _cross_fit_rmse(X: np.ndarray, y: np.ndarray, ridge: float,
                    rating_range: tuple[float, float]) -> float:
    """Held-out RMSE of the blend, weights fitted on one half and scored on the other."""
    half = np.arange(len(y)) % 2 == 0
    pred = np.empty(len(y))
    for fit_on in (half, ~half):
        if fit_on.sum() < X.shape[1] + 1:
            return float("nan")
        w = _ridge(X[fit_on], y[fit_on], ridge)
        pred[~fit_on] = w[0] + X[~fit_on] @ w[1:]
    return float(_rmse(np.clip(pred, *rating_range), y))
