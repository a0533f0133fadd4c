"""Hybrid matrix factorisation: DotProductBias whose vectors also sum side-feature factors.

Also home of :class:`SideFeatureRecommender`, the shared machinery of every model that takes
side features (this one and :class:`~collabkit.models.mlp.MLPRecommender` with
``use_features=True``): feature tables for the training ids *and* for ids that only have
metadata, rating-time inputs, and scoring of cold users and items from their features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from collabkit.data.features import FeatureEncoder
from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary, as_id_array
from collabkit.errors import ConfigError, DataError
from collabkit.models.capabilities import FactorModel, FactorTables, FoldInExactness
from collabkit.models.dot import sigmoid_range
from collabkit.models.mf import TorchRecommender
from collabkit.runtime import resolve_device
from collabkit.seeds import derive_seed, numpy_rng, resolve_seed, torch_generator
from collabkit.train.loop import EpochStats, fit_one_cycle

__all__ = ["HybridDotProductBias", "HybridMF", "SideFeatureRecommender"]

_ITEM_GROUPS = ("genres", "year")


def _logit_mean(mean: float, y_range: tuple[float, float] | None) -> float:
    """The output bias that makes a zero-initialised model predict ``mean``."""
    if y_range is None:
        return float(mean)
    lo, hi = y_range
    p = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


class SideFeatureRecommender(TorchRecommender):
    """A :class:`TorchRecommender` whose module may also read side features.

    Subclasses say which feature groups they use in :meth:`_feature_spec` and how to pack
    ``(users, items, item_numbers, user_categories, time_numbers)`` into module inputs in
    :meth:`_pack`. With no feature groups the model is trained exactly like
    :class:`TorchRecommender` on ``(users, items)``.

    Features of ids without ratings
    -------------------------------
    Metadata rows (``item_meta`` / ``user_meta`` of the training data, or tables passed to
    :meth:`register_items` / :meth:`register_users`) of ids that have no training ratings are
    encoded too. Such a *cold* id has no learned embedding, but when the model uses features
    of its side (genres or year for items, demographics for users) :meth:`predict_ratings`
    scores it from them instead of falling back to the baseline (``fallback`` is then False).
    :meth:`recommend` still ranks only training items and treats cold users with the
    baseline.

    Rating time
    -----------
    With the ``time`` group, training rows use their own timestamps. Predictions use the
    ``timestamps`` given to :meth:`predict_ratings` / :meth:`predict`, else the mean training
    time (also in :meth:`recommend`), so without timestamps the time term only depends on
    the item's release year.

    Fitted attributes
    -----------------
    encoder_ : FeatureEncoder
    feat_user_vocab_, feat_item_vocab_ : Vocabulary
        Training ids first (in the order of ``user_vocab_`` / ``item_vocab_``), then cold ids
        that have features.
    user_cats_ : numpy.ndarray (n_feat_users, C) int64
    item_numbers_ : numpy.ndarray (n_feat_items, F) float32
    item_years_ : numpy.ndarray (n_feat_items,) float64, NaN where unknown
    """

    encoder_: FeatureEncoder

    # ------------------------------------------------------------------ hooks
    def _feature_spec(self) -> str | Iterable[str] | None:
        """The ``features`` argument of :meth:`FeatureEncoder.fit`."""
        return None

    def _pack(self, users: torch.Tensor, items: torch.Tensor, item_numbers: torch.Tensor,
              user_cats: torch.Tensor, time_numbers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    # ------------------------------------------------------------------ features
    def _fit_features(self, data: Interactions) -> None:
        enc = FeatureEncoder.fit(data, self._feature_spec())
        self.encoder_ = enc
        cold_items = cold_users = np.zeros(0, dtype=object)
        if data.item_meta is not None and any(g in enc.groups for g in _ITEM_GROUPS):
            ids = data.item_meta.index.to_numpy()
            cold_items = ids[self.item_vocab_.index(ids) < 0]
        if data.user_meta is not None and "demographics" in enc.groups:
            ids = data.user_meta.index.to_numpy()
            cold_users = ids[self.user_vocab_.index(ids) < 0]
        self.feat_item_vocab_ = self.item_vocab_
        self.feat_user_vocab_ = self.user_vocab_
        self.item_numbers_ = np.zeros((0, enc.n_item_numbers), dtype=np.float32)
        self.user_cats_ = np.zeros((0, len(enc.user_cardinalities)), dtype=np.int64)
        self.item_years_ = np.zeros(0, dtype=np.float64)
        self._add_items(data.item_meta, self.item_vocab_.all_ids, train=True)
        self._add_users(data.user_meta, self.user_vocab_.all_ids, train=True)
        self._add_items(data.item_meta, cold_items)
        self._add_users(data.user_meta, cold_users)

    def _add_items(self, meta: pd.DataFrame | None, ids: np.ndarray, train: bool = False
                   ) -> None:
        if not train:
            ids = ids[self.feat_item_vocab_.index(ids) < 0]
            if not len(ids):
                return
            self.feat_item_vocab_ = Vocabulary(np.concatenate(
                [self.feat_item_vocab_.all_ids, ids]))
        self.item_numbers_ = np.concatenate(
            [self.item_numbers_, self.encoder_.item_numbers(meta, ids)])
        self.item_years_ = np.concatenate(
            [self.item_years_, self.encoder_.release_years(meta, ids)])

    def _add_users(self, meta: pd.DataFrame | None, ids: np.ndarray, train: bool = False
                   ) -> None:
        if not train:
            ids = ids[self.feat_user_vocab_.index(ids) < 0]
            if not len(ids):
                return
            self.feat_user_vocab_ = Vocabulary(np.concatenate(
                [self.feat_user_vocab_.all_ids, ids]))
        self.user_cats_ = np.concatenate(
            [self.user_cats_, self.encoder_.user_categories(meta, ids)])

    def register_items(self, item_meta: pd.DataFrame) -> SideFeatureRecommender:
        """Add features of new items (``item_meta`` indexed by raw id, like the training one).

        Ids the model already knows keep their features. Returns ``self``.
        """
        self.check_fitted()
        if not isinstance(item_meta, pd.DataFrame):
            raise DataError(f"item_meta must be a DataFrame indexed by raw item id, got "
                            f"{type(item_meta).__name__}")
        if any(g in self.encoder_.groups for g in _ITEM_GROUPS):
            self._add_items(item_meta, item_meta.index.to_numpy())
        return self

    def register_users(self, user_meta: pd.DataFrame) -> SideFeatureRecommender:
        """Add features of new users (``user_meta`` indexed by raw id). Returns ``self``."""
        self.check_fitted()
        if not isinstance(user_meta, pd.DataFrame):
            raise DataError(f"user_meta must be a DataFrame indexed by raw user id, got "
                            f"{type(user_meta).__name__}")
        if "demographics" in self.encoder_.groups:
            self._add_users(user_meta, user_meta.index.to_numpy())
        return self

    def _feature_inputs(self, ue: np.ndarray, ie: np.ndarray, uf: np.ndarray, itf: np.ndarray,
                        timestamps: np.ndarray | None) -> tuple[torch.Tensor, ...]:
        """Module inputs for embedding indices ``ue``/``ie`` (-1: cold) and feature rows."""
        dev = self.device_
        tn = self.encoder_.time_numbers(timestamps, self.item_years_[itf])
        return self._pack(torch.as_tensor(ue, device=dev), torch.as_tensor(ie, device=dev),
                          torch.as_tensor(self.item_numbers_[itf], device=dev),
                          torch.as_tensor(self.user_cats_[uf], device=dev),
                          torch.as_tensor(tn, device=dev))

    def _inputs(self, u: np.ndarray, i: np.ndarray,
                timestamps: np.ndarray | None = None) -> tuple[torch.Tensor, ...]:
        return self._feature_inputs(u, i, u, i, timestamps)

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self._validate()
        self.seed_ = resolve_seed(self.random_state)
        self.device_ = resolve_device(self.device)
        self._fit_features(data)
        rng = numpy_rng(self.seed_)
        r = data.ratings.astype(np.float32)
        ts = data.timestamps if self.encoder_.n_time else None
        rows = np.arange(len(r))
        vx = vy = None
        vdense: tuple[np.ndarray, np.ndarray] | None = None
        if valid is not None:
            vu = self.user_vocab_.index(valid.user_vocab.ids(valid.users))
            vi = self.item_vocab_.index(valid.item_vocab.ids(valid.items))
            ok = (vu >= 0) & (vi >= 0)
            vts = None if ts is None or valid.timestamps is None else valid.timestamps[ok]
            vx, vy = self._inputs(vu[ok], vi[ok], vts), valid.ratings[ok]
            vdense = (vu[ok], vi[ok])
        elif self.valid_frac > 0:
            perm = rng.permutation(len(r))
            n_valid = int(round(self.valid_frac * len(r)))
            rows, vrows = np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
            vx = self._inputs(u[vrows], i[vrows], None if ts is None else ts[vrows])
            vy = r[vrows]
            vdense = (u[vrows], i[vrows])
        valid_t = None if vx is None else (vx, torch.as_tensor(vy, device=self.device_))
        x = self._inputs(u[rows], i[rows], None if ts is None else ts[rows])
        # module constructors and dropout draw from torch's global generator: seed it inside a
        # fork so that random_state makes fits reproducible and the caller's state is untouched
        cuda = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(derive_seed(self.seed_, "torch-global"))
            self.module_ = self._build_module(torch_generator(self.seed_)).to(self.device_)
            result = fit_one_cycle(
                self.module_, x, torch.as_tensor(r[rows], device=self.device_),
                epochs=int(self.epochs), lr_max=float(self.lr), wd=float(self.wd),
                batch_size=int(self.batch_size),
                generator=self._shuffle_generator(),
                valid=valid_t, callback=self._callback(),
            )
        self.history_ = [vars(h) for h in result.history]
        self.fit_seconds_ = result.fit_seconds
        self.n_valid_ = 0 if vy is None else int(len(vy))
        self.module_.eval()
        last = self.history_[-1].get("valid_rmse") if self.history_ else None
        self._check_beats_baseline((u[rows], i[rows], r[rows]),
                                   None if vdense is None or vy is None else (*vdense, vy), last)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def _predict_rows(self, ue: np.ndarray, ie: np.ndarray, uf: np.ndarray, itf: np.ndarray,
                      timestamps: np.ndarray | None, cold: bool) -> np.ndarray:
        out, step = [], 262144
        for s in range(0, len(ue), step):
            sl = slice(s, s + step)
            x = self._feature_inputs(ue[sl], ie[sl], uf[sl], itf[sl],
                                     None if timestamps is None else timestamps[sl])
            out.append(self.module_(*x, cold=cold).cpu())
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self._predict_rows(u, i, u, i, None, cold=False)

    def predict_ratings(self, users: Any, items: Any, timestamps: Any = None, *,
                        clip: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Predictions for raw id pairs and a mask of those the baseline answered.

        Pairs whose ids are known, or unknown but with registered features on a side the
        model has features for, are scored by the model. ``timestamps`` (seconds since the
        epoch, one per pair) feed the rating-time features; without them the mean training
        time is used. ``clip`` as in :meth:`Recommender.predict_ratings`.
        """
        self.check_fitted()
        users_a, items_a = as_id_array(users), as_id_array(items)
        ts = None
        if timestamps is not None:
            ts = np.atleast_1d(np.asarray(timestamps, dtype=np.float64))
            if ts.shape != users_a.shape:
                raise DataError(f"give one timestamp per pair: got {ts.size} timestamps for "
                                f"{users_a.size} pairs")
        out, fb = super().predict_ratings(users_a, items_a, clip=False)
        uf = self.feat_user_vocab_.index(users_a)
        itf = self.feat_item_vocab_.index(items_a)
        ue = np.where(uf < len(self.user_vocab_), uf, -1)
        ie = np.where(itf < len(self.item_vocab_), itf, -1)
        warm = ~fb
        if ts is not None and self.encoder_.n_time and warm.any():
            out[warm] = self._predict_rows(ue[warm], ie[warm], uf[warm], itf[warm], ts[warm],
                                           cold=False)
        cold = fb & (uf >= 0) & (itf >= 0)
        if cold.any():
            out[cold] = self._predict_rows(ue[cold], ie[cold], uf[cold], itf[cold],
                                           None if ts is None else ts[cold], cold=True)
            fb = fb & ~cold
        return (self._clip_scores(out) if clip else out), fb

    def predict(self, users: Any, items: Any, timestamps: Any = None, *,
                clip: bool = True) -> pd.DataFrame:
        """Like :meth:`Recommender.predict`, optionally at given rating ``timestamps``."""
        pred, fb = self.predict_ratings(users, items, timestamps, clip=clip)
        items_a = as_id_array(items)
        return pd.DataFrame({"user": as_id_array(users), "item": items_a,
                             "prediction": pred, "fallback": fb, "title": self.titles(items_a)})

    def _item_side(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Numbers and mean-time features of every training item, on the device."""
        n = len(self.item_vocab_)
        tn = self.encoder_.time_numbers(None, self.item_years_[:n])
        return (torch.as_tensor(self.item_numbers_[:n], device=self.device_),
                torch.as_tensor(tn, device=self.device_))

    # ------------------------------------------------------------------ persistence
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {**super()._state_tensors(),
                "features.item_numbers": torch.as_tensor(self.item_numbers_),
                "features.item_years": torch.as_tensor(self.item_years_),
                "features.user_cats": torch.as_tensor(self.user_cats_)}

    def _extra_state(self) -> dict[str, Any]:
        n_u, n_i = len(self.user_vocab_), len(self.item_vocab_)
        return {**super()._extra_state(), "encoder": self.encoder_.to_json(),
                "cold_users": Vocabulary(self.feat_user_vocab_.all_ids[n_u:]).to_json(),
                "cold_items": Vocabulary(self.feat_item_vocab_.all_ids[n_i:]).to_json()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.encoder_ = FeatureEncoder.from_json(extra["encoder"])
        self.item_numbers_ = tensors["features.item_numbers"].numpy()
        self.item_years_ = tensors["features.item_years"].numpy()
        self.user_cats_ = tensors["features.user_cats"].numpy()
        cold_u = Vocabulary.from_json(extra["cold_users"]).all_ids
        cold_i = Vocabulary.from_json(extra["cold_items"]).all_ids
        self.feat_user_vocab_ = Vocabulary(np.concatenate([self.user_vocab_.all_ids, cold_u]))
        self.feat_item_vocab_ = Vocabulary(np.concatenate([self.item_vocab_.all_ids, cold_i]))
        with torch.random.fork_rng(devices=[]):  # module constructors draw initial weights
            super()._load_state(tensors, extra)


class HybridDotProductBias(nn.Module):
    r"""DotProductBias whose user and item vectors and biases add side-feature terms.

    .. math::

        \tilde q_i &= q_i + \sum_g x_{ig}\, v_g, \qquad
        \tilde b_i = b_i + \sum_g x_{ig}\, c_g, \\
        \tilde p_u &= p_u + \sum_{k} w_{k,\,d_{uk}}, \qquad
        \tilde b_u = b_u + \sum_{k} a_{k,\,d_{uk}}, \\
        \hat r_{ui} &= \operatorname{sigmoid\_range}\big(\tilde p_u^\top \tilde q_i
            + \tilde b_u + \tilde b_i + \mu + \beta^\top t_{ui},\; y_{lo}, y_{hi}\big)

    where :math:`x_i` are the item's numbers (genres multi-hot, standardised year and its
    missing flag), :math:`d_{uk}` the user's category in column :math:`k` (age bucket,
    gender, occupation) and :math:`t_{ui}` the rating-time numbers. A cold item (or user)
    has :math:`q_i = 0, b_i = 0` and is scored from its features alone.

    Parameters
    ----------
    n_users, n_items, n_factors, y_range, init_std, global_bias
        As in :class:`~collabkit.models.dot.DotProductBias`.
    n_item_numbers : int
        Width of the item numbers :math:`x_i` (0: none).
    user_cardinalities : sequence of int
        Rows of each user category table (0 columns: none).
    n_time : int
        Width of the rating-time numbers (0: no time term).
    id_dropout : float
        In training, the share of rows whose user (item) own terms :math:`p_u, b_u`
        (:math:`q_i, b_i`) are zeroed, on the sides that have features, so that the feature
        terms alone must predict those rows, as they will for cold ids (DropoutNet, Volkovs
        et al. 2017). With Adam the shared feature factors otherwise learn no faster than the
        per-id ones, and cold ids get only part of the signal.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int = 50,
                 y_range: tuple[float, float] | None = (0.0, 5.5), *,
                 n_item_numbers: int = 0, user_cardinalities: Iterable[int] = (),
                 n_time: int = 0, id_dropout: float = 0.0, init_std: float = 0.01,
                 global_bias: float = 0.0) -> None:
        super().__init__()
        self.id_dropout = float(id_dropout)
        cards = [int(c) for c in user_cardinalities]
        self.user_factors = nn.Embedding(n_users, n_factors)
        self.item_factors = nn.Embedding(n_items, n_factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.item_feat_factors = (nn.Linear(n_item_numbers, n_factors, bias=False)
                                  if n_item_numbers else None)
        self.item_feat_bias = nn.Linear(n_item_numbers, 1, bias=False) if n_item_numbers else None
        self.user_cat_factors = nn.Embedding(sum(cards), n_factors) if cards else None
        self.user_cat_bias = nn.Embedding(sum(cards), 1) if cards else None
        self.time_bias = nn.Linear(n_time, 1, bias=False) if n_time else None
        self.register_buffer("user_cat_offsets",
                             torch.as_tensor(np.cumsum([0, *cards[:-1]]), dtype=torch.int64))
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        self.register_buffer("global_bias", torch.tensor(float(global_bias)))
        with torch.no_grad():
            for t in (self.user_factors, self.item_factors, self.item_feat_factors,
                      self.user_cat_factors):
                if t is not None:
                    t.weight.normal_(0.0, init_std)
            for t in (self.user_bias, self.item_bias, self.item_feat_bias, self.user_cat_bias,
                      self.time_bias):
                if t is not None:
                    t.weight.zero_()

    def _id_terms(self, factors: nn.Embedding, bias: nn.Embedding, idx: torch.Tensor,
                  cold: bool, has_features: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The id's own vector and bias; zero for ``-1`` (cold) or a row hit by id dropout."""
        if cold:
            keep, idx = idx >= 0, idx.clamp(min=0)
        elif self.training and self.id_dropout > 0 and has_features:
            keep = torch.rand(idx.shape, device=idx.device) >= self.id_dropout
        else:
            return factors(idx), bias(idx).squeeze(-1)
        k = keep.to(factors.weight.dtype)
        return factors(idx) * k.unsqueeze(-1), bias(idx).squeeze(-1) * k

    def user_repr(self, users: torch.Tensor, cats: torch.Tensor, cold: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors :math:`\\tilde p_u` ``(n, k)`` and biases :math:`\\tilde b_u` ``(n,)``."""
        p, b = self._id_terms(self.user_factors, self.user_bias, users, cold,
                              self.user_cat_factors is not None)
        if self.user_cat_factors is not None and self.user_cat_bias is not None:
            idx = cats + self.user_cat_offsets
            p = p + self.user_cat_factors(idx).sum(1)
            b = b + self.user_cat_bias(idx).sum(1).squeeze(-1)
        return p, b

    def item_repr(self, items: torch.Tensor, numbers: torch.Tensor, cold: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Item vectors :math:`\\tilde q_i` ``(n, k)`` and biases :math:`\\tilde b_i` ``(n,)``."""
        q, b = self._id_terms(self.item_factors, self.item_bias, items, cold,
                              self.item_feat_factors is not None)
        if self.item_feat_factors is not None and self.item_feat_bias is not None:
            q = q + self.item_feat_factors(numbers)
            b = b + self.item_feat_bias(numbers).squeeze(-1)
        return q, b

    def time_term(self, time_numbers: torch.Tensor) -> torch.Tensor:
        """:math:`\\beta^\\top t_{ui}`, shape ``(n,)`` (zeros without time features)."""
        if self.time_bias is None:
            return time_numbers.new_zeros(time_numbers.shape[0])
        return self.time_bias(time_numbers).squeeze(-1)

    def _out(self, raw: torch.Tensor) -> torch.Tensor:
        return raw if self.y_range is None else sigmoid_range(raw, *self.y_range)

    def forward(self, users: torch.Tensor, items: torch.Tensor, item_numbers: torch.Tensor,
                user_cats: torch.Tensor, time_numbers: torch.Tensor, *,
                cold: bool = False) -> torch.Tensor:
        """Predicted ratings, shape ``(batch,)``; with ``cold``, index ``-1`` has no own terms."""
        p, bu = self.user_repr(users, user_cats, cold)
        q, bi = self.item_repr(items, item_numbers, cold)
        raw = (p * q).sum(-1) + bu + bi + self.global_bias + self.time_term(time_numbers)
        return self._out(raw)


class HybridMF(SideFeatureRecommender, FactorModel):
    r"""Biased MF plus additive side-feature factors and biases (kind ``"hybrid"``).

    .. math::

        \hat r_{ui} = \operatorname{sigmoid\_range}\Big(
            \big(p_u + \textstyle\sum_k w_{k,d_{uk}}\big)^\top
            \big(q_i + \textstyle\sum_g x_{ig} v_g\big)
            + b_u + \textstyle\sum_k a_{k,d_{uk}} + b_i + \textstyle\sum_g x_{ig} c_g
            + \mu + \beta^\top t_{ui},\; y_{lo}, y_{hi}\Big)

    (see :class:`HybridDotProductBias`): the item vector adds one factor per genre and for
    the release year, the user vector one per demographic category, and the rating time
    enters as an additive bias. A cold item with genres, or a cold user with demographics,
    still gets a meaningful vector; see :class:`SideFeatureRecommender` for how cold ids and
    timestamps are handled at prediction time.

    Parameters
    ----------
    n_factors : int, default 50
    features : "auto", sequence of str or None, default "auto"
        Feature groups among ``"genres"``, ``"year"``, ``"demographics"``, ``"time"``;
        ``"auto"`` uses every group the training data has metadata for, ``None`` none
        (then the model is BiasedMF).
    id_dropout : float, default 0.05
        Share of training rows whose own user (item) terms are dropped so the feature terms
        learn to stand alone, as they must for cold ids (see :class:`HybridDotProductBias`).
        A trade (``benchmarks/results/shallow_vs_deep.md``): on ml-100k u1–u5, 0 gives the
        best test RMSE (mean 0.9053 against 0.9069 at 0.05); on the test rows of items held
        out of training (u1, 20 % of the items) the RMSE is 1.052 at 0, 1.039 at 0.05 and
        1.029 at 0.2, against 1.062 for the baseline fallback of plain MF.
    epochs : int, default 5
    lr : float, default 1e-2
        Peak learning rate of the one-cycle schedule.
    wd : float, default 0.4
        Decoupled weight decay (AdamW); larger than BiasedMF's 0.1 because batches of 256
        take a quarter of the steps (and decay steps) of batches of 64.
    batch_size : int, default 256
    y_range, valid_frac, device, random_state, callback
        As in :class:`~collabkit.models.mf.BiasedMF`.

    Examples
    --------
    >>> import collabkit                                                    # doctest: +SKIP
    >>> train, test = collabkit.load_split("ml-100k", "u1")                 # doctest: +SKIP
    >>> model = HybridMF(random_state=0).fit(train)                         # doctest: +SKIP
    >>> new_item = pd.DataFrame({"genres": ["Comedy|Romance"], "year": [1998]},
    ...                         index=pd.Index([99999], name="item"))      # doctest: +SKIP
    >>> model.register_items(new_item).predict([1, 2], [99999, 99999])     # doctest: +SKIP
    """

    kind = "hybrid"
    fold_in_exactness = FoldInExactness(
        "population", 0.06, "AdamW's decoupled decay has no objective to match, so the "
        "population prior stands in; a few epochs leave the trained rows short of any optimum")

    def __init__(self, *, n_factors: int = 50, features: str | tuple[str, ...] | None = "auto",
                 id_dropout: float = 0.05, epochs: int = 5, lr: float = 1e-2, wd: float = 0.4,
                 batch_size: int = 256,
                 y_range: str | tuple[float, float] | None = "auto", valid_frac: float = 0.1,
                 device: str = "auto", random_state: int | None = None,
                 callback: Callable[[EpochStats], None] | None = None) -> None:
        self.n_factors = n_factors
        self.features = features
        self.id_dropout = id_dropout
        self.epochs = epochs
        self.lr = lr
        self.wd = wd
        self.batch_size = batch_size
        self.y_range = y_range
        self.valid_frac = valid_frac
        self.device = device
        self.random_state = random_state
        self.callback = callback

    def _validate(self) -> None:
        super()._validate()
        if not 0 <= self.id_dropout < 1:
            raise ConfigError(f"id_dropout must be in [0, 1), got {self.id_dropout!r}")

    def _feature_spec(self) -> str | Iterable[str] | None:
        return self.features

    def _pack(self, users: torch.Tensor, items: torch.Tensor, item_numbers: torch.Tensor,
              user_cats: torch.Tensor, time_numbers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return users, items, item_numbers, user_cats, time_numbers

    def _build_module(self, generator: torch.Generator) -> HybridDotProductBias:
        y_range = self._resolve_y_range()
        enc = self.encoder_
        m = HybridDotProductBias(len(self.user_vocab_), len(self.item_vocab_),
                                 int(self.n_factors), y_range,
                                 n_item_numbers=enc.n_item_numbers,
                                 user_cardinalities=enc.user_cardinalities, n_time=enc.n_time,
                                 id_dropout=float(self.id_dropout),
                                 global_bias=_logit_mean(self.global_mean_, y_range))
        with torch.no_grad():
            for t in (m.user_factors, m.item_factors, m.item_feat_factors, m.user_cat_factors):
                if t is not None:
                    t.weight.normal_(0.0, 0.01, generator=generator)
        return m

    @torch.no_grad()
    def factor_tables(self) -> FactorTables:
        r"""The effective tables of the training ids, features folded in.

        Returns
        -------
        FactorTables
            user factors ``(n_users, k)`` = :math:`\tilde p_u`, user bias
            :math:`\tilde b_u`, item factors ``(n_items, k)`` = :math:`\tilde q_i`, item bias
            :math:`\tilde b_i` plus the time term at the mean training time, the global bias
            (logit space) and ``y_range``: :math:`\hat r_{ui} =
            \operatorname{sigmoid\_range}(\tilde p_u^\top \tilde q_i + \tilde b_u
            + \tilde b_i + g)`, the form of BiasedMF's tables (for fold-in and explanations).
        """
        self.check_fitted()
        m: HybridDotProductBias = self.module_  # type: ignore[assignment]
        dev = self.device_
        numbers, tn = self._item_side()
        q, bi = m.item_repr(torch.arange(len(self.item_vocab_), device=dev), numbers)
        nu = len(self.user_vocab_)
        p, bu = m.user_repr(torch.arange(nu, device=dev),
                            torch.as_tensor(self.user_cats_[:nu], device=dev))
        return FactorTables(p, bu, q, bi + m.time_term(tn), float(m.global_bias), m.y_range,
                            None)

    def item_vectors(self) -> np.ndarray:
        """The items' own factors :math:`q_i` (without the feature terms), for similar items
        and onboarding."""
        m: HybridDotProductBias = self.module_  # type: ignore[assignment]
        return m.item_factors.weight.detach().cpu().double().numpy()

    @torch.no_grad()
    def _score_users(self, u: np.ndarray) -> torch.Tensor:
        m: HybridDotProductBias = self.module_  # type: ignore[assignment]
        numbers, tn = self._item_side()
        n_items = len(self.item_vocab_)
        q, bi = m.item_repr(torch.arange(n_items, device=self.device_), numbers)
        p, bu = m.user_repr(torch.as_tensor(u, device=self.device_),
                            torch.as_tensor(self.user_cats_[u], device=self.device_))
        raw = torch.addmm(bi + m.time_term(tn) + m.global_bias, p, q.T)
        raw.add_(bu[:, None])
        return m._out(raw)
