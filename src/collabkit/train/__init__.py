"""The training loop."""

from collabkit.train.loop import fit_one_cycle
from collabkit.train.runner import EpochStats, TrainResult

__all__ = ["EpochStats", "TrainResult", "fit_one_cycle"]
