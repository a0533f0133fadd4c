"""Implicit-feedback rankers: interactions without ratings (clicks, plays, check-ins).

Each model ranks the whole catalog for a user, folds in a new user from a few interactions,
finds similar items, and saves to the common model-file format.
"""

from collabkit.models.implicit._base import ImplicitRecommender
from collabkit.models.implicit.baselines import ItemKNN, Popularity
from collabkit.models.implicit.bpr import BPR
from collabkit.models.implicit.ease import EASE
from collabkit.models.implicit.gfcf import GraphFilter
from collabkit.models.implicit.ials import ImplicitALS

__all__ = ["ImplicitRecommender", "Popularity", "ItemKNN", "GraphFilter", "EASE",
           "ImplicitALS", "BPR"]
