"""Where and how computation runs: the device resolver and the one torch-threads helper.

Both are run-time choices, never part of what a model learned: a model saved on CUDA is a
model, and the machine loading it decides where it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["resolve_device", "load_device", "threads"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) → CUDA when available, else CPU; anything else as given."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_device(saved: str | torch.device | None) -> torch.device:
    """Where a loaded model runs: its saved ``device`` setting when this machine has it,
    else what ``"auto"`` picks here (a model saved on CUDA loads on a CPU-only machine)."""
    device = resolve_device(saved)
    usable = {"cpu": True, "cuda": torch.cuda.is_available(),
              "mps": torch.backends.mps.is_available()}.get(device.type, False)
    return device if usable else resolve_device("auto")


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op CPU threads, restoring the old count after.

    ``None`` leaves the setting alone. The training loops, samplers and fold-in default to
    one thread: their kernels are small gathers and scatters that gain little from a second
    thread, torch's parallel ``index_add_``/``bincount`` are far slower than the serial ones,
    and on a machine shared with other work every parallel kernel waits for a descheduled
    thread (a fit of BiasedMF on ml-100k measured 0.8 s with one thread and 53 s with two on a
    busy 2-core machine).
    """
    old = torch.get_num_threads()
    if n is None or int(n) == old:
        yield
        return
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
