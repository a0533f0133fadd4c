"""Synthetic data with known answers, for tests and benchmarks."""

from collabkit.testing.synthetic import PlantedData, planted_low_rank

__all__ = ["PlantedData", "planted_low_rank"]
