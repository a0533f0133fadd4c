"""The BayesianMF family (kind ``"bpmf"``): the estimator and its Gibbs sampler."""

from collabkit.models.bpmf._estimator import BayesianMF

__all__ = ["BayesianMF"]
