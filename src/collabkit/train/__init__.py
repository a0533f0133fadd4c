"""The training loop."""

from collabkit.train.loop import EpochStats, TrainResult, fit_one_cycle

__all__ = ["EpochStats", "TrainResult", "fit_one_cycle"]
