"""SideFeatureRecommender: the shared machinery of every model that takes side features.

:class:`~collabkit.models.hybrid.HybridMF` and :class:`~collabkit.models.nn.MLPRecommender`
(``use_features=True``) build on it: feature tables for the training ids *and* for ids that
only have metadata, rating-time inputs, and scoring of cold users and items from their
features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch

from collabkit.data.features import FeatureEncoder
from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary, as_id_array
from collabkit.errors import DataError
from collabkit.models._torch import TorchRecommender
from collabkit.runtime import resolve_device
from collabkit.seeds import derive_seed, numpy_rng, resolve_seed, torch_generator
from collabkit.train.loop import fit_one_cycle
from collabkit.train.validation import carve_validation

__all__ = ["SideFeatureRecommender", "logit_mean"]

_ITEM_GROUPS = ("genres", "year")


def logit_mean(mean: float, y_range: tuple[float, float] | None) -> float:
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
        r = data.ratings.astype(np.float32)
        ts = data.timestamps if self.encoder_.n_time else None
        carve = carve_validation(u, i, r, user_vocab=self.user_vocab_,
                                 item_vocab=self.item_vocab_, valid=valid,
                                 valid_frac=self.valid_frac, rng=numpy_rng(self.seed_))
        rows = carve.train_rows
        vx = vy = None
        vdense: tuple[np.ndarray, np.ndarray] | None = None
        if carve.valid is not None:
            vu, vi, vy = carve.valid
            if valid is not None:
                ok = carve.valid_known
                vts = None if ts is None or valid.timestamps is None else valid.timestamps[ok]
            else:
                vts = None
            vx, vdense = self._inputs(vu, vi, vts), (vu, vi)
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
                optimizer=str(getattr(self, "optimizer", "adamw")),
            )
        self.history_ = [h.row() for h in result.history]
        self.fit_seconds_ = result.fit_seconds
        self.n_valid_ = 0 if vy is None else int(len(vy))
        self.module_.eval()
        last = self.history_[-1].get("valid_rmse") if self.history_ else None
        self.valid_rmse_ = last  # issue 12: as BiasedMF has it
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
