"""The tier table: each way of training across ranks, by name, and the one signature its rank
entry point has (issue 15).

A tier is registered once, by name, with the dotted path of its rank entry point (imported
only when the tier runs, so that listing the tiers imports neither torch.distributed code
nor the tier's module). The launcher (``collabkit train --nproc N`` or ``torchrun ... -m
collabkit train``) starts the process group, checks that every rank holds the same data
(:mod:`collabkit.distributed.guard`), calls the chosen tier's entry point on every rank, and
saves rank 0's model after a barrier. Every entry point has the signature of
:data:`RankEntry`::

    def run(job: TrainJob, world: World) -> Recommender | None: ...

* ``job`` says what to train (:class:`TrainJob`); ``job.train`` holds the rows this rank
  reads, with vocabularies shared by every rank;
* ``world`` is this rank's place (:class:`~collabkit.distributed.group.World`); the process
  group is running;
* it returns the fitted model on rank 0 (complete: gathered from shards when the tier
  shards it), and the model or ``None`` on the other ranks. It must not save: the launcher
  does, once, on rank 0, atomically after a barrier.

Part 2 (row-wise shards, ALS/iALS across ranks) registers its tiers here with
:func:`register`, in this module's ``_BUILTIN`` list.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collabkit.errors import ConfigError

if TYPE_CHECKING:
    from collabkit.data.interactions import Interactions
    from collabkit.distributed.group import World
    from collabkit.models.base import Recommender

__all__ = ["TrainJob", "Tier", "RankEntry", "register", "get", "names", "entry"]


@dataclass(frozen=True)
class TrainJob:
    """What every rank trains: the same on each rank except ``train``'s rows.

    Attributes
    ----------
    train : Interactions
        The training rows this rank holds (all of them for the replicate tier), with the
        vocabularies every rank shares.
    kind : str
        Model kind of :mod:`collabkit.models.registry` (``"dot"``, ``"nn"``, ``"als"``, ...).
    params : dict
        Constructor arguments of that kind (``random_state`` included: the same on every rank).
    options : dict
        The tier's own settings (replicate: ``"sparse"``, ``"shuffle"``; see each tier).
    """

    train: Interactions
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


RankEntry = Callable[["TrainJob", "World"], "Recommender | None"]


@dataclass(frozen=True)
class Tier:
    """One tier: its ``name``, its rank entry point as ``"package.module:function"``
    (a :data:`RankEntry`), the model kinds it trains, and one line on when to use it."""

    name: str
    entry: str
    kinds: tuple[str, ...]
    summary: str


_TIERS: dict[str, Tier] = {}


def register(tier: Tier) -> Tier:
    """Add ``tier`` to the table (a second tier under the same name is refused)."""
    if tier.name in _TIERS and _TIERS[tier.name] != tier:
        raise ConfigError(f"a distributed tier named {tier.name!r} is already registered "
                          f"({_TIERS[tier.name].entry})")
    _TIERS[tier.name] = tier
    return tier


def names() -> list[str]:
    """The registered tiers' names, in registration order."""
    return list(_TIERS)


def get(name: str) -> Tier:
    """The tier called ``name``; an unknown name is refused with the known ones."""
    try:
        return _TIERS[name]
    except KeyError:
        raise ConfigError(f"unknown distributed tier {name!r}; the tiers are "
                          f"{', '.join(names())}") from None


def entry(name: str) -> RankEntry:
    """Import and return tier ``name``'s rank entry point."""
    module, _, func = get(name).entry.partition(":")
    fn: RankEntry = getattr(importlib.import_module(module), func)
    return fn


_BUILTIN = [
    Tier("replicate", "collabkit.distributed.replicate:run", ("dot", "nn", "module"),
         "a full copy of the model on every rank (DistributedDataParallel); the ratings are "
         "split by rank. For tables that fit one rank (up to ~10^6 rows dense, ~10^7 sparse)."),
    Tier("rowwise", "collabkit.distributed.rowwise:run", ("dot",),
         "user and item tables split by rows across ranks, rows moved by all-to-all; the "
         "ratings follow their user's rows. For tables that do not fit one rank (linear "
         "BiasedMF; SGD, Adagrad or SparseAdam kept per row)."),
    Tier("als", "collabkit.distributed.als:run", ("als", "ials"),
         "ALS and iALS, each rank solving its block of rows against the all-gathered other "
         "side. For ALS models whose smaller side fits one rank."),
]
for _tier in _BUILTIN:
    register(_tier)
