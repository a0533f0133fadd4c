"""One seed in, numpy and torch generators out; never touches global RNG state."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["resolve_seed", "numpy_rng", "torch_generator", "resolve_device"]


def resolve_seed(random_state: int | None) -> int:
    """An int seed: ``random_state`` itself, or fresh OS entropy when it is ``None``."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    return int(random_state)


def numpy_rng(seed: int) -> np.random.Generator:
    """A numpy generator for ``seed``."""
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) → CUDA when available, else CPU; anything else as given."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
