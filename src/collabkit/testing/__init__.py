"""Synthetic data with known answers, for tests and benchmarks."""

from collabkit.testing.synthetic import PlantedData, long_tail, planted_low_rank

__all__ = ["PlantedData", "long_tail", "planted_low_rank"]
