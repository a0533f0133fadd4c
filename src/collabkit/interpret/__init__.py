r"""What a fitted model learned: item biases, principal components, neighbours, explanations.

Everything here reads a fitted model and never changes it. BiasedMF (kind ``"dot"``) gives the
full picture. Other kinds degrade: models with item embeddings (kind ``"nn"``) get PCA,
similarity-based explanations and factor neighbours from those embeddings; every model gets
the damped baseline biases (``source="baseline"`` in the results). Similar items are, by
default, read from the training ratings every model stores (:mod:`.corating`).
"""

from __future__ import annotations

from collabkit.interpret.biases import item_biases
from collabkit.interpret.explain import Explanation, explain
from collabkit.interpret.lookup import find_item
from collabkit.interpret.pca import PCAResult, pca
from collabkit.interpret.similar import similar_items, similar_users

__all__ = [
    "item_biases",
    "PCAResult",
    "pca",
    "similar_items",
    "similar_users",
    "find_item",
    "Explanation",
    "explain",
]

