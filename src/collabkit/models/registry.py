"""The model kinds collabkit knows: one explicit table, ``kind -> "module:Class"``.

Nothing registers by import side effect: :func:`get` imports a kind's module the first time
it is asked for, so ``collabkit.fit(data, "svdpp")``, ``collabkit.load_model``, the CLI and
:class:`~collabkit.models.ensemble.Ensemble` all resolve kinds here. A new model kind is one
line in :data:`KINDS`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from collabkit.errors import UnknownModelKindError

if TYPE_CHECKING:
    from collabkit.models.base import Recommender

__all__ = ["KINDS", "get", "find", "kinds", "unknown_kind_message", "by_class_name"]

#: kind (the name used on the command line and in saved model files) -> "module:Class"
KINDS: dict[str, str] = {
    "mean": "collabkit.models.baseline:GlobalMean",
    "bias": "collabkit.models.baseline:BiasBaseline",
    "dot": "collabkit.models.biased_mf:BiasedMF",
    "als": "collabkit.models.als:BiasedALS",
    "bpmf": "collabkit.models.bpmf:BayesianMF",
    "svdpp": "collabkit.models.svdpp:SVDpp",
    "nn": "collabkit.models.nn:MLPRecommender",
    "hybrid": "collabkit.models.hybrid:HybridMF",
    "ensemble": "collabkit.models.ensemble:Ensemble",
    # implicit feedback (rankers): issue 13
    "popularity": "collabkit.models.implicit:Popularity",
    "itemknn": "collabkit.models.implicit:ItemKNN",
    "ials": "collabkit.models.implicit:ImplicitALS",
    "ease": "collabkit.models.implicit:EASE",
    "gfcf": "collabkit.models.implicit:GraphFilter",
    "bpr": "collabkit.models.implicit:BPR",
    "module": "collabkit.models.module:ModuleRecommender",
}


def kinds() -> list[str]:
    """Every known model kind, sorted."""
    return sorted(KINDS)


def unknown_kind_message(kind: object) -> str:
    """The one message for a kind that is not in the table."""
    return f"unknown model kind {kind!r}; known kinds: {', '.join(kinds())}"


def find(kind: str) -> type[Recommender] | None:
    """The class of ``kind``, or None when the kind is unknown."""
    target = KINDS.get(kind) if isinstance(kind, str) else None
    if target is None:
        return None
    module, _, name = target.partition(":")
    cls: type[Recommender] = getattr(importlib.import_module(module), name)
    if cls.kind != kind:  # a table typo would otherwise load files under the wrong kind
        raise RuntimeError(f"models.registry maps {kind!r} to {target}, whose kind is "
                           f"{cls.kind!r}")
    return cls


def get(kind: str) -> type[Recommender]:
    """The class of ``kind``.

    Raises
    ------
    UnknownModelKindError
        ``kind`` is not known; the message lists the known kinds.
    """
    cls = find(kind)
    if cls is None:
        raise UnknownModelKindError(unknown_kind_message(kind))
    return cls


def by_class_name(name: str) -> type[Recommender] | None:
    """The class listed under ``name`` (e.g. ``"SVDpp"``), or None."""
    for kind, target in KINDS.items():
        if target.rpartition(":")[2] == name:
            return find(kind)
    return None
