"""Seeds: one integer in, independent named streams out (``numpy.random.SeedSequence``).

A model resolves its ``random_state`` once (:func:`resolve_seed`) and derives every other
random stream it needs from that seed by name (:func:`derive_seed`): the shuffle of its
batches, torch's global generator around module construction, the seeds of an ensemble's
members. Derived seeds come from ``SeedSequence(seed, spawn_key=...)``, so streams never
overlap the way ``seed + 1`` for one purpose and ``seed + 1`` for another member did.
Nothing here touches global RNG state.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

__all__ = ["resolve_seed", "derive_seed", "numpy_rng", "torch_generator"]

#: first element of every named spawn key, so named keys never equal ``SeedSequence.spawn``'s
_NAMED = 0x5EED


def resolve_seed(random_state: int | None) -> int:
    """An int seed: ``random_state`` itself, or fresh OS entropy when it is ``None``."""
    if random_state is None:
        entropy = np.random.SeedSequence().entropy
        assert isinstance(entropy, int)  # a fresh SeedSequence draws one int from the OS
        return entropy % (2**63)
    return int(random_state)


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the child stream named ``stream`` of ``seed``.

    The same ``(seed, stream)`` always gives the same value; different names give
    statistically independent streams (``SeedSequence`` hashing), unrelated to ``seed``
    itself and to any ``seed + m``.

    >>> derive_seed(0, "shuffle") == derive_seed(0, "shuffle") != derive_seed(0, "init")
    True
    """
    key = (_NAMED, zlib.crc32(stream.encode("utf-8")))
    ss = np.random.SeedSequence(int(seed) % (2**64), spawn_key=key)
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int) -> np.random.Generator:
    """A numpy generator for ``seed``."""
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
