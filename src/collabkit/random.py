"""Deprecated home of the seed and device helpers: see :mod:`collabkit.seeds` and
:mod:`collabkit.runtime` (kept so that existing imports keep working)."""

from __future__ import annotations

from collabkit.runtime import resolve_device
from collabkit.seeds import numpy_rng, resolve_seed, torch_generator

__all__ = ["resolve_seed", "numpy_rng", "torch_generator", "resolve_device"]
