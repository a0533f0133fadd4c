r"""What a model can do beyond predicting, declared by the model itself.

Fold-in, cold start, onboarding and interpretation (:mod:`collabkit.recommend`,
:mod:`collabkit.interpret`) never guess attribute names or test ``model.kind``: they ask.

:class:`FactorModel`
    A biased factor model :math:`\hat r_{ui} = f(p_u^\top q_i + b_u + b_i + g)` with
    :math:`f` the identity (optionally clipped) or a sigmoid range. It gives its tables
    (:meth:`~FactorModel.factor_tables`), states its own training objective as a fold-in
    penalty (:meth:`~FactorModel.foldin_penalty`) and its rating noise
    (:meth:`~FactorModel.noise_variance`).
:class:`EmbeddingModel`
    A network with a user embedding table: fold-in fits a fresh row by gradient steps
    through :meth:`~EmbeddingModel.forward_with_user_rows`.

A model without a capability makes :func:`require` raise :class:`NotSupportedError`, which
names the model kind and the capability.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from collabkit.errors import NotSupportedError
from collabkit.train.rowsolve import RowPenalty, train_noise_variance

__all__ = ["FactorTables", "FoldRows", "FoldInExactness", "FactorModel", "EmbeddingModel",
           "require",
           "item_vectors", "can_fold_in"]

Side = Literal["users", "items"]


@dataclass(frozen=True)
class FactorTables:
    r"""The four tables of a biased factor model, rows in the model's vocabulary order.

    :math:`\hat r_{ui} = \operatorname{squash}(P_u^\top Q_i + b^u_u + b^i_i + g)`, where
    squash is the sigmoid range ``y_range`` when given, else the identity clipped to
    ``clip`` (None: not clipped).
    """

    user_factors: torch.Tensor
    user_bias: torch.Tensor
    item_factors: torch.Tensor
    item_bias: torch.Tensor
    global_bias: float
    y_range: tuple[float, float] | None = None
    clip: tuple[float, float] | None = None


@dataclass(frozen=True)
class FoldRows:
    """The ratings being folded in: for each, its row (``0..n_rows-1``) and the dense index
    of the rated item (or user, when folding items)."""

    rows: np.ndarray
    other: np.ndarray
    n_rows: int


@dataclass(frozen=True)
class FoldInExactness:
    """How closely folding a trained user's own training ratings back in reproduces their
    trained predictions: with penalty ``reg``, within ``rmse`` over all items, and why."""

    reg: str
    rmse: float
    reason: str


class FactorModel(ABC):
    """Capability: a biased factor model (fold-in by a closed-form row solve)."""

    #: what the fold-in contract (:mod:`collabkit.testing.contracts`) may expect
    fold_in_exactness: ClassVar[FoldInExactness] = FoldInExactness(
        "matched", 0.05, "the fold-in solves the training objective of one row")

    @abstractmethod
    def factor_tables(self) -> FactorTables:
        """The model's effective tables (for fold-in, similar items, explanations)."""

    @abstractmethod
    def foldin_penalty(self, folded: Side, center: np.ndarray,
                       rated: FoldRows | None = None) -> RowPenalty | None:
        """The penalty of ``reg="matched"``: the one training put on a row of ``folded``
        (``"users"`` or ``"items"``), around ``center`` (or around a centre of its own per row
        of ``rated``, when training's penalty depends on what the row rated). None when that
        penalty is the population prior itself (a Bayesian model's Gaussian prior on rows)."""

    def noise_variance(self) -> float:
        """Rating noise variance of the population prior: the last training MSE (1.0 when
        the model has no history)."""
        return train_noise_variance(getattr(self, "history_", None))

    def stored_row_prior(self, folded: Side) -> tuple[np.ndarray, np.ndarray] | None:
        """A (mean, precision) prior the model used for rows of ``folded`` in training, or
        None (fold-in then fits one to the trained rows)."""
        return None

    def item_vectors(self) -> np.ndarray:
        """Item factors as float64 numpy, ``(n_items, k)``."""
        return self.factor_tables().item_factors.detach().cpu().double().numpy()


class EmbeddingModel(ABC):
    """Capability: a network with a user embedding (fold-in by gradient steps on a row)."""

    #: what the fold-in contract (:mod:`collabkit.testing.contracts`) may expect
    fold_in_exactness: ClassVar[FoldInExactness] = FoldInExactness(
        "population", 0.25, "200 Adam steps fit a fresh row from the mean trained row, under "
        "an L2 pull toward it; training reached its row by SGD alongside every other weight, "
        "with dropout, and a few epochs leave it far from any optimum")

    @abstractmethod
    def user_embedding(self) -> torch.nn.Embedding:
        """The user table whose rows fold-in replaces; raises :class:`NotSupportedError`
        when the network needs more about a user than the row (for example features)."""

    @abstractmethod
    def forward_with_user_rows(self, x: torch.Tensor, rows: torch.Tensor,
                               items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings of ``items`` when the user rows are ``x[rows]``."""

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """Item embeddings as float64 numpy, ``(n_items, d)``."""

    def foldin_ridge(self) -> float:
        """Default L2 penalty of a folded row around the mean trained row."""
        return 1e-2


def _kind(model: Any) -> str:
    return f"{type(model).__name__} (kind {getattr(type(model), 'kind', '?')!r})"


def require(model: Any, capability: type, what: str) -> Any:
    """``model`` itself when it has ``capability``; else :class:`NotSupportedError`."""
    if isinstance(model, capability):
        return model
    raise NotSupportedError(f"{what} is not supported by {_kind(model)}: it lacks the "
                            f"{capability.__name__} capability (factor tables such as "
                            "BiasedMF's, or a user embedding such as MLPRecommender's)")


def can_fold_in(model: Any) -> bool:
    """Whether a new user can be folded into ``model``."""
    if isinstance(model, FactorModel):
        return True
    if isinstance(model, EmbeddingModel):
        try:
            model.user_embedding()
        except NotSupportedError:
            return False
        return True
    return False


def item_vectors(model: Any, what: str) -> np.ndarray:
    """Item factors or embeddings of ``model``; :class:`NotSupportedError` without them."""
    if isinstance(model, FactorModel | EmbeddingModel):
        return model.item_vectors()
    raise NotSupportedError(f"{what} needs item factors or embeddings; {_kind(model)} has "
                            "none. Use a BiasedMF or MLPRecommender")

