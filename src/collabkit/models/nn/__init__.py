"""The neural family (kind ``"nn"``): the EmbeddingNN module and the MLPRecommender estimator."""

from collabkit.models.nn._estimator import MLPRecommender
from collabkit.models.nn._module import EmbeddingNN, emb_size_rule, emb_sizes

__all__ = ["MLPRecommender", "EmbeddingNN", "emb_size_rule", "emb_sizes"]
