"""The HTTP endpoints (JSON, under ``/v1``); see the table in :mod:`collabkit.serve`.

Most endpoints are plain ``def`` functions: FastAPI runs them in its thread pool, so model
scoring and SQLite commits never block the event loop. The two that carry the load are
``async`` (issue 10): a recommendation list answered from the cache costs a small SQLite read
and a look-up, done on the event loop with no thread hop, and only a list to compute goes to
the thread pool; a feedback write awaits the store's group commit without holding a thread.
The dependencies (``_ctx``, ``_caller``) are ``async`` too: FastAPI would run a plain ``def``
dependency in the thread pool, a hop per request each.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from collabkit._version import __version__
from collabkit.errors import ConfigError, ServiceError, UnknownIdError
from collabkit.interpret import explain as explain_prediction
from collabkit.serve.answers import answer_key, compute_answer
from collabkit.serve.auth import Principal
from collabkit.serve.context import ServiceContext
from collabkit.serve.engine import Snapshot, year_of
from collabkit.serve.schemas import (
    Contribution,
    DeleteOut,
    ErrorOut,
    ExplainOut,
    FeedbackIn,
    FeedbackOut,
    HealthOut,
    ItemOut,
    ItemsOut,
    ModelCard,
    OnboardingIn,
    OnboardingItem,
    OnboardingOut,
    PolicyName,
    PredictIn,
    PredictionOut,
    PredictionsOut,
    RecommendationsOut,
    ReloadOut,
    SimilarItem,
    SimilarOut,
    StoredRatingOut,
    StoredRatingsOut,
    VisitorOut,
)

__all__ = ["router"]

LOG = logging.getLogger("collabkit.serve")

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="the app key or a visitor token")
_DESC = {401: "missing or wrong bearer token", 403: "not your user, or app key needed",
         404: "unknown user or item", 409: "conflict", 422: "invalid request",
         429: "too many writes; see Retry-After"}


def _errs(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorOut, "description": _DESC[c]} for c in codes}


async def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def _caller(request: Request,
                  cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                  ) -> Principal:
    # on the event loop: the app key is a constant-time compare, a visitor token one
    # indexed SQLite read
    header = request.headers.get("authorization")
    ctx: ServiceContext = request.app.state.ctx
    who = ctx.auth.principal(header if cred is None else f"Bearer {cred.credentials}")
    request.state.role = who.role
    return who


Ctx = Annotated[ServiceContext, Depends(_ctx)]
Who = Annotated[Principal, Depends(_caller)]
UserId = Annotated[str, Path(min_length=1, max_length=64)]
ItemText = Annotated[str, Path(min_length=1, max_length=64)]


def _num(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _native(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _item(snap: Snapshot, value: int | str, where: str) -> Any:
    try:
        return snap.item_id(value)
    except UnknownIdError:
        raise ServiceError(404, "unknown_item", f"{where} is not an item of this model; find "
                           "item ids with GET /v1/items?q=TITLE") from None


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """``frame.itertuples()``: a namedtuple per row, one field per column. Typed ``Any``: the
    fields are whatever the columns hold (pandas-stubs says any scalar); routes convert them."""
    return frame.itertuples()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- service
@router.get("/v1/health", response_model=HealthOut, tags=["service"])
def health(ctx: Ctx) -> HealthOut:
    """Liveness and what is being served (no credentials needed)."""
    snap = ctx.snapshot
    return HealthOut(status="ok", model_fingerprint=snap.fingerprint,
                     n_users=len(snap.model.user_vocab_), n_items=len(snap.model.item_vocab_),
                     store=ctx.store.kind, schema_version=ctx.store.schema_version,
                     reloads=ctx.holder.reloads)


@router.get("/v1/model", response_model=ModelCard, responses=_errs(401), tags=["service"])
def model_card(ctx: Ctx, who: Who) -> ModelCard:
    """The model card: kind, parameters, training metrics, data fingerprint, when trained."""
    snap = ctx.snapshot
    m = snap.model
    params = {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
              for k, v in m.get_params().items() if k != "callback"}
    metrics: dict[str, float | None] = {"valid_rmse": None}
    if getattr(m, "valid_rmse_", None) is not None:
        metrics["valid_rmse"] = _num(m.valid_rmse_)
    history = getattr(m, "history_", None) or []
    if history and isinstance(history[-1], dict):
        for key in ("train_loss", "valid_rmse"):
            if isinstance(history[-1].get(key), (int, float)):
                metrics[f"last_epoch_{key}"] = _num(history[-1][key])
    return ModelCard(kind=m.kind, params=params, metrics=metrics,
                     data_fingerprint=getattr(m, "data_fingerprint_", None),
                     n_train=getattr(m, "n_train_", None), n_users=len(m.user_vocab_),
                     n_items=len(m.item_vocab_),
                     rating_range=[float(m.rating_range_[0]), float(m.rating_range_[1])],
                     trained_at=_iso(snap.saved_at), loaded_at=_iso(snap.loaded_at),
                     model_fingerprint=snap.fingerprint, collabkit_version=__version__)


@router.post("/v1/visitors", status_code=201, response_model=VisitorOut,
             responses=_errs(429), tags=["users"])
def new_visitor(request: Request, ctx: Ctx) -> VisitorOut:
    """A new anonymous visitor: a user id and a secret token (shown once, stored hashed)."""
    ctx.visitors.check(f"ip:{request.client.host if request.client else '?'}")
    user_id, token = ctx.auth.issue_visitor()
    return VisitorOut(user_id=user_id, token=token)


@router.post("/v1/admin/reload", response_model=ReloadOut, responses=_errs(401, 403, 409),
             tags=["service"])
def reload_model(ctx: Ctx, who: Who) -> ReloadOut:
    """Load the model folder again (app key only). Requests in flight finish on the old
    model; stored feedback applies to the new one. On failure the old model keeps serving."""
    who.require_app()
    try:
        old, new = ctx.reload()
    except Exception as e:
        raise ServiceError(409, "reload_failed", f"the model folder could not be loaded "
                           f"({type(e).__name__}); still serving {ctx.snapshot.fingerprint}. "
                           "The server log has the details.") from None
    return ReloadOut(model_fingerprint=new.fingerprint, previous_fingerprint=old.fingerprint)


@router.get("/metrics", include_in_schema=False)
def metrics(ctx: Ctx) -> Response:
    """Prometheus text format; the feedback-loop gauges are computed from the served-list log
    at each scrape (trailing 1 h and 24 h)."""
    from collabkit.serve.loopreport import recent_numbers

    try:
        ctx.served.flush()
        ctx.metrics.set_loop(recent_numbers(ctx.db_path))
    except Exception as e:  # the other metrics still answer
        LOG.error("feedback-loop metrics not computed: %s", e)
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")


# --------------------------------------------------------------------------- items
@router.get("/v1/items", response_model=ItemsOut, responses=_errs(401, 422), tags=["items"])
def search_items(ctx: Ctx, who: Who,
                 q: Annotated[str | None, Query(max_length=100)] = None,
                 genre: Annotated[str | None, Query(max_length=50)] = None,
                 limit: Annotated[int, Query(ge=1, le=50)] = 20) -> ItemsOut:
    """Items whose title contains ``q`` (case-insensitive) and whose genres include
    ``genre``, most-rated first."""
    frame = ctx.snapshot.search(q, genre, limit)
    return ItemsOut(items=[ItemOut(item_id=_native(r.item), title=r.title, genres=r.genres,
                                   year=year_of(r.title), n_ratings=int(r.n_ratings))
                           for r in _rows(frame)])


@router.get("/v1/items/{item_id}/similar", response_model=SimilarOut,
            responses=_errs(401, 404, 422), tags=["items"])
def similar(item_id: ItemText, ctx: Ctx, who: Who,
            k: Annotated[int, Query(ge=1, le=100)] = 10) -> SimilarOut:
    """The ``k`` items most similar to this one (never the item itself): the library's
    ``similar_items`` with its defaults, the adjusted cosine of the training ratings shrunk by
    the users who rated both (the centred factor cosine when the model stores no ratings)."""
    snap = ctx.snapshot
    raw = _item(snap, item_id, "item_id")
    try:
        frame = snap.similar(raw, k)
    except ConfigError:
        raise ServiceError(422, "unsupported", f"a {snap.model.kind!r} model has no item "
                           "factors to compare; serve a factor model (dot, als, nn)") from None
    return SimilarOut(item_id=_native(raw), items=[
        SimilarItem(rank=int(r.rank), item_id=_native(r.item), title=r.title,
                    similarity=float(r.similarity), n_ratings=int(r.n_ratings))
        for r in _rows(frame)])


@router.post("/v1/onboarding/items", response_model=OnboardingOut,
             responses=_errs(401, 422), tags=["items"])
def onboarding(body: OnboardingIn, ctx: Ctx, who: Who) -> OnboardingOut:
    """Items to ask a new user about: popular, and spread across the factor space."""
    snap = ctx.snapshot
    exclude = [x for x in (snap.stored_item(str(v)) for v in body.exclude) if x is not None]
    frame = snap.onboarding(body.n, exclude)
    info = snap.describe(frame["item"].tolist())
    return OnboardingOut(strategy="popular-diverse", items=[
        OnboardingItem(rank=i + 1, item_id=_native(r.item), title=r.title, year=d[1],
                       genres=d[2], n_ratings=int(r.n_ratings), mean_rating=float(r.mean_rating))
        for i, (r, d) in enumerate(zip(_rows(frame), info, strict=True))])


# --------------------------------------------------------------------------- users
@router.get("/v1/users/{user_id}/recommendations", response_model=RecommendationsOut,
            responses=_errs(401, 403, 422), tags=["users"])
async def recommendations(user_id: UserId, ctx: Ctx, who: Who,
                          k: Annotated[int, Query(ge=1, le=100)] = 10,
                          exclude: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006
                          reasons: bool = False,
                          policy: Annotated[PolicyName | None, Query(
                              description="re-ranking: top | mmr | debias | explore (default: the "
                                          "server's --policy)")] = None) -> Response:
    """Top-``k`` for a user: the model's list for a known user; a fold-in of everything
    they rated once they have stored feedback; the fallback tiers for an unknown user.
    Items the user rated are never recommended. ``reasons=true`` adds a one-line reason per
    item (the user's rating that supports it most). ``policy`` re-ranks the ``model`` and
    ``personal`` tiers' lists (:mod:`collabkit.recommend.rerank`; ``explore`` shows half the
    list from further down the user's best 200). Every answer is logged (served lists)."""
    who.require_user(user_id)
    snap = ctx.snapshot
    stored = ctx.store.ratings(user_id)
    args = (snap, user_id, stored, k, exclude, reasons, ctx.config.min_personal,
            policy or ctx.config.policy)
    key = answer_key(*args)
    answer = ctx.cache.get(key)
    hit = answer is not None
    if answer is None:  # scoring runs in the thread pool; the event loop goes on meanwhile
        answer = await run_in_threadpool(compute_answer, *args)
        ctx.cache.put(key, answer)
    ctx.metrics.cache.labels("hit" if hit else "miss").inc()
    ctx.metrics.recommendations.labels(answer.tier).inc()
    ctx.served.add(user_id, answer.item_ids, answer.tier, answer.policy, snap.fingerprint)
    return Response(answer.body, media_type="application/json")


@router.post("/v1/predictions", response_model=PredictionsOut,
             responses=_errs(401, 403, 404, 422), tags=["users"])
def predictions(body: PredictIn, ctx: Ctx, who: Who) -> PredictionsOut:
    """Predicted ratings for (user, item) pairs; a user with stored feedback is folded in."""
    snap = ctx.snapshot
    snap.refuse_ranker("predicted ratings", "GET /v1/users/{user_id}/recommendations (scores)")
    for pair in body.pairs:
        who.require_user(pair.user_id)
    items = [_item(snap, p.item_id, f"pairs[{j}].item_id") for j, p in enumerate(body.pairs)]
    out: list[PredictionOut | None] = [None] * len(body.pairs)
    by_user: dict[str, list[int]] = {}
    for j, p in enumerate(body.pairs):
        by_user.setdefault(p.user_id, []).append(j)
    for user_id, rows in by_user.items():
        frame = snap.predict(snap.user_id(user_id), ctx.store.ratings(user_id),
                             [items[j] for j in rows])
        for j, r in zip(rows, _rows(frame), strict=True):
            out[j] = PredictionOut(user_id=user_id, item_id=_native(items[j]),
                                   rating=float(r.prediction), fallback=bool(r.fallback),
                                   title=r.title)
    # every pair belongs to exactly one user's rows, so no slot is left None
    return PredictionsOut(predictions=[p for p in out if p is not None],
                          model_fingerprint=snap.fingerprint)


@router.get("/v1/users/{user_id}/explain", response_model=ExplainOut,
            responses=_errs(401, 403, 404, 422), tags=["users"])
def explain(user_id: UserId, ctx: Ctx, who: Who,
            item_id: Annotated[str, Query(min_length=1, max_length=64)]) -> ExplainOut:
    """Why the model predicts what it does for (user, item): bias terms, the factor dot
    product, and the user's rated items that support it most."""
    who.require_user(user_id)
    snap = ctx.snapshot
    snap.refuse_ranker("explained rating", "GET /v1/items/{item_id}/similar")
    raw_item = _item(snap, item_id, "item_id")
    raw_user = snap.user_id(user_id)
    folded = snap.folded(raw_user, ctx.store.ratings(user_id))
    if folded is None and not snap.known_user(raw_user):
        raise ServiceError(404, "unknown_user", "user_id is neither known to the model nor "
                           "has stored feedback; send ratings with POST /v1/feedback first")
    e = explain_prediction(snap.model, folded if folded is not None else raw_user, raw_item)
    contrib = [Contribution(item_id=_native(r.item), title=r.title, rating=_num(r.rating),
                            deviation=_num(r.deviation), similarity=_num(r.similarity),
                            weight=_num(r.weight)) for r in _rows(e.contributions.head(10))]
    return ExplainOut(user_id=user_id, item_id=_native(raw_item), title=e.title,
                      prediction=_num(e.prediction), global_bias=_num(e.global_bias),
                      user_bias=_num(e.user_bias), item_bias=_num(e.item_bias),
                      dot=None if e.dot is None else _num(e.dot), source=e.source,
                      contributions=contrib)


@router.post("/v1/feedback", status_code=201, response_model=FeedbackOut,
             responses={200: {"model": FeedbackOut, "description": "a retry: already stored"},
                        **_errs(401, 403, 404, 409, 422, 429)}, tags=["users"])
async def feedback(body: FeedbackIn, ctx: Ctx, who: Who) -> JSONResponse:
    """Store ratings; answered 201 only after the transaction committed. Retrying with the
    same ``request_id`` stores nothing more and answers 200 with ``duplicate: true``."""
    who.require_user(body.user_id)
    if who.role == "visitor":
        ctx.writes.check(who.key)
    snap = ctx.snapshot
    rows = [(str(_item(snap, r.item_id, f"ratings[{j}].item_id")),
             snap.feedback_value(j, r.rating)) for j, r in enumerate(body.ratings)]
    res = await asyncio.wrap_future(ctx.store.submit_feedback(
        body.request_id, body.user_id, rows, snap.fingerprint))
    if res.duplicate and (res.owner != body.user_id or not res.same_payload):
        raise ServiceError(409, "request_id_reused", "this request_id was already used for "
                           "other ratings; nothing was stored. Use a fresh id (e.g. a UUID) "
                           "for every new write, and the same id only to retry one")
    if not res.duplicate:
        ctx.metrics.feedback_rows.inc(res.n_rows)
        if ctx.retrainer is not None:
            ctx.retrainer.note(res.n_rows)
    out = FeedbackOut(request_id=res.request_id, user_id=res.owner, n_rows=res.n_rows,
                      duplicate=res.duplicate)
    return JSONResponse(out.model_dump(), status_code=200 if res.duplicate else 201)


@router.get("/v1/users/{user_id}/ratings", response_model=StoredRatingsOut,
            responses=_errs(401, 403, 404, 422), tags=["users"])
def stored_ratings(user_id: UserId, ctx: Ctx, who: Who) -> StoredRatingsOut:
    """The user's stored feedback: their latest rating of each item."""
    who.require_user(user_id)
    rows = ctx.store.ratings(user_id)
    snap = ctx.snapshot
    if not rows and who.role == "app" and not snap.known_user(snap.user_id(user_id)):
        raise ServiceError(404, "unknown_user", "no feedback is stored for user_id and the "
                           "model does not know it")
    info = snap.describe([x for x in (snap.stored_item(r.item_id) for r in rows)
                          if x is not None])
    described = iter(info)
    out = []
    for r in rows:
        t, y, g = next(described) if snap.stored_item(r.item_id) is not None else \
            (None, None, None)
        out.append(StoredRatingOut(item_id=r.item_id, rating=r.rating, rated_at=r.created_at,
                                   title=t, year=y, genres=g))
    return StoredRatingsOut(user_id=user_id, ratings=out)


@router.delete("/v1/users/{user_id}", response_model=DeleteOut,
               responses=_errs(401, 403, 422, 429), tags=["users"])
def delete_user(user_id: UserId, ctx: Ctx, who: Who) -> DeleteOut:
    """Delete the user's stored feedback (and a visitor's token: it stops working)."""
    who.require_user(user_id)
    if who.role == "visitor":
        ctx.writes.check(who.key)
    ctx.served.flush()  # queued served lists of this user are deleted with the rest
    return DeleteOut(user_id=user_id, deleted_rows=ctx.store.delete_user(user_id))
