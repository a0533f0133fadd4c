"""The onboarding page at ``/`` (issue 11) and the two endpoints only it needed.

The page is three static files shipped as package data (``collabkit/serve/static``): plain
HTML, CSS and JavaScript, no build step, same origin as the API. Every answer here carries a
strict Content-Security-Policy: scripts, styles and requests only from this origin, nothing
inline, no frames, no plugins. The script sets every text with ``textContent``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from collabkit.errors import ServiceError
from collabkit.serve.routes import Ctx, UserId, Who, _errs, _native, _rows
from collabkit.serve.schemas import GenresOut, RecItem, RecommendationsOut

__all__ = ["router", "CSP"]

router = APIRouter()

#: the Content-Security-Policy of the page and its files
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache"}
_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"}


@cache
def _static(name: str) -> bytes:
    return resources.files("collabkit.serve").joinpath("static", name).read_bytes()


def _file(name: str) -> Response:
    return Response(_static(name), media_type=_FILES[name], headers=_HEADERS)


@router.get("/", include_in_schema=False)
def page() -> Response:
    """The onboarding page."""
    return _file("index.html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """The page's icon, where browsers look for it first."""
    return _file("icon.svg")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """The page's script, style sheet and icon (these files only)."""
    if name not in _FILES or name == "index.html":
        raise ServiceError(404, "not_found", "no such file; the page is at /")
    return _file(name)


@router.get("/v1/genres", response_model=GenresOut, responses=_errs(401), tags=["items"])
def genres(ctx: Ctx, who: Who) -> GenresOut:
    """The model's genres (empty when its items carry none)."""
    return GenresOut(genres=ctx.snapshot.genres())


@router.get("/v1/users/{user_id}/genre-start", response_model=RecommendationsOut,
            responses=_errs(401, 403, 422), tags=["users"])
def genre_start(user_id: UserId, ctx: Ctx, who: Who,
                genre: Annotated[list[str], Query(min_length=1, max_length=10)],
                k: Annotated[int, Query(ge=1, le=100)] = 10,
                exclude: Annotated[list[str], Query(max_length=100)] = []  # noqa: B006
                ) -> RecommendationsOut:
    """Top-``k`` for someone who only said which genres they like ("I like Sci-Fi and
    Comedy"): the genres' best items against other good films, folded in
    (:func:`collabkit.recommend.onboarding.genre_start`); tier ``genre``. Nothing is
    stored; the list is logged like every served list."""
    who.require_user(user_id)
    snap = ctx.snapshot
    ex = [x for x in (snap.stored_item(e) for e in exclude) if x is not None]
    known = {g.lower() for g in snap.genres()}
    if not known:
        raise ServiceError(422, "unsupported", "this model's items carry no genres; serve a "
                           "model trained on data with genres (e.g. MovieLens)")
    for g in genre:
        if g.lower() not in known:
            raise ServiceError(422, "unknown_genre", f"genre={g[:50]!r} is not a genre of this "
                               "model; GET /v1/genres lists them")
    frame, reasons = snap.genre_recommend(genre, k, ex)
    items = [RecItem(rank=int(r.rank), item_id=_native(r.item), title=r.title,
                     score=float(r.score), reason=w)
             for r, w in zip(_rows(frame), reasons, strict=True)]
    ctx.metrics.recommendations.labels("genre").inc()
    ctx.served.add(user_id, [it.item_id for it in items], "genre", "top", snap.fingerprint)
    return RecommendationsOut(user_id=user_id, tier="genre", model_fingerprint=snap.fingerprint,
                              items=items)
