"""Request and response bodies of the HTTP API (pydantic, strict).

Requests are strict and closed: unknown fields, strings for numbers, booleans, NaN and
infinities, over-long ids and oversized lists are all 422 before any endpoint runs. Ratings
are further checked against the model's rating range by the endpoint (the range belongs to
the model, not the schema).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "IdStr", "ItemRef", "RatingIn", "FeedbackIn", "FeedbackOut", "RecItem",
    "RecommendationsOut", "PairIn", "PredictIn", "PredictionOut", "PredictionsOut",
    "SimilarItem", "SimilarOut", "ItemOut", "ItemsOut", "Contribution", "ExplainOut",
    "OnboardingIn", "OnboardingItem", "OnboardingOut", "VisitorOut", "StoredRatingOut",
    "StoredRatingsOut", "DeleteOut", "HealthOut", "ModelCard", "ErrorBody", "ErrorOut",
    "ReloadOut", "MAX_LIST", "GenresOut", "PolicyName",
]

MAX_LIST = 100
#: the re-ranking policies of :mod:`collabkit.recommend.rerank`
PolicyName = Literal["top", "mmr", "debias", "explore"]
_IN = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

#: a user id: 1-64 characters, no "/" (it must fit in a URL path) and no control characters
IdStr = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                         pattern=r"^[^/\x00-\x1f\x7f]+$")]
#: an item id as the model knows it: an integer, or a string of 1-64 characters
ItemRef = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | IdStr
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RatingIn(BaseModel):
    model_config = _IN
    item_id: ItemRef
    rating: float | None = Field(default=None, description=(
        "required by a rating model (within its range); for an implicit-feedback model the "
        "feedback is an interaction: optional and ignored (stored as 1)"))


class FeedbackIn(BaseModel):
    """Ratings by one user. ``request_id`` makes the write idempotent: send the same id when
    retrying, and the ratings are stored once."""

    model_config = _IN
    request_id: RequestId
    user_id: IdStr
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_LIST)


class FeedbackOut(BaseModel):
    request_id: str
    user_id: str
    n_rows: int
    duplicate: bool


class RecItem(BaseModel):
    rank: int
    item_id: int | str
    title: str | None
    score: float
    reason: str | None = Field(default=None, description="one line on why (``reasons=true``)")


class RecommendationsOut(BaseModel):
    user_id: str
    tier: str = Field(description="model | personal | bias | popularity | genre")
    policy: str = Field(default="top", description="the re-ranking policy that answered")
    items: list[RecItem]
    model_fingerprint: str


class PairIn(BaseModel):
    model_config = _IN
    user_id: IdStr
    item_id: ItemRef


class PredictIn(BaseModel):
    model_config = _IN
    pairs: list[PairIn] = Field(min_length=1, max_length=MAX_LIST)


class PredictionOut(BaseModel):
    user_id: str
    item_id: int | str
    rating: float
    fallback: bool = Field(description="the user is unknown: the damped-bias baseline answered")
    title: str | None


class PredictionsOut(BaseModel):
    predictions: list[PredictionOut]
    model_fingerprint: str


class SimilarItem(BaseModel):
    rank: int
    item_id: int | str
    title: str | None
    similarity: float
    n_ratings: int


class SimilarOut(BaseModel):
    item_id: int | str
    items: list[SimilarItem]


class ItemOut(BaseModel):
    item_id: int | str
    title: str | None
    genres: str | None
    year: int | None = None
    n_ratings: int


class ItemsOut(BaseModel):
    items: list[ItemOut]


class Contribution(BaseModel):
    item_id: int | str
    title: str | None
    rating: float | None
    deviation: float | None
    similarity: float | None
    weight: float | None


class ExplainOut(BaseModel):
    user_id: str
    item_id: int | str
    title: str | None
    prediction: float | None
    global_bias: float | None
    user_bias: float | None
    item_bias: float | None
    dot: float | None
    source: str
    contributions: list[Contribution]


class OnboardingIn(BaseModel):
    """``exclude``: items already shown or rated; they are not asked about again."""

    model_config = _IN
    n: int = Field(default=12, ge=1, le=24)
    exclude: list[ItemRef] = Field(default_factory=list, max_length=MAX_LIST)


class OnboardingItem(BaseModel):
    rank: int
    item_id: int | str
    title: str | None
    year: int | None = None
    genres: str | None = None
    n_ratings: int
    mean_rating: float


class OnboardingOut(BaseModel):
    items: list[OnboardingItem]
    strategy: str


class VisitorOut(BaseModel):
    user_id: str
    token: str = Field(description="send as `Authorization: Bearer <token>`; shown once")


class StoredRatingOut(BaseModel):
    item_id: str
    rating: float
    rated_at: float
    title: str | None = None
    year: int | None = None
    genres: str | None = None


class GenresOut(BaseModel):
    genres: list[str]


class StoredRatingsOut(BaseModel):
    user_id: str
    ratings: list[StoredRatingOut]


class DeleteOut(BaseModel):
    user_id: str
    deleted_rows: int


class HealthOut(BaseModel):
    status: str
    model_fingerprint: str
    n_users: int
    n_items: int
    store: str
    schema_version: int
    reloads: int


class ModelCard(BaseModel):
    kind: str
    params: dict[str, Any]
    metrics: dict[str, float | None]
    data_fingerprint: str | None
    n_train: int | None
    n_users: int
    n_items: int
    rating_range: list[float] = Field(min_length=2, max_length=2)
    trained_at: str = Field(description="when the model files were written (UTC, ISO 8601)")
    loaded_at: str
    model_fingerprint: str
    collabkit_version: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class ReloadOut(BaseModel):
    model_fingerprint: str
    previous_fingerprint: str
