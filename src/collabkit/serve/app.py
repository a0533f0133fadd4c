"""The FastAPI application factory: :func:`create_app`.

>>> from collabkit.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(model="runs/demo-ml-latest-small"))   # doctest: +SKIP

The model and the feedback database are opened here, before any request, so a bad model
folder or database path fails at startup with a clear message rather than on the first
request. Every error leaves in one shape, ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collabkit._version import __version__
from collabkit.errors import ConfigError, ServiceError
from collabkit.serve.context import (
    MAX_BODY,
    ServeConfig,
    ServiceContext,
    default_db_path,
    one_thread_per_request,
)
from collabkit.serve.metrics import ObservabilityMiddleware
from collabkit.serve.page import router as page_router
from collabkit.serve.routes import router

__all__ = ["ServeConfig", "ServiceContext", "create_app", "app_from_env", "default_db_path",
           "MAX_BODY"]

LOG = logging.getLogger("collabkit.serve")
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "body_too_large",
                 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def _loc(parts: tuple[Any, ...]) -> str:
    """A validation error location, reduced to safe characters (no request text echoed)."""
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        else:
            s = _SAFE.sub("?", str(p))[:40]
            out.append(("." if out else "") + s)
    return "".join(out) or "body"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = []
        for err in exc.errors()[:5]:
            where = _loc(tuple(err.get("loc", ())))
            msgs.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(422, "invalid", "; ".join(msgs) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = {404: "no such endpoint; see /docs",
                   405: "method not allowed on this endpoint; see /docs"}.get(
            exc.status_code, str(exc.detail))
        return _error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        LOG.exception("internal error")
        return _error(500, "internal", "internal error; the server log has the details")


class BodyLimitMiddleware:
    """413 in the service's error shape for bodies over ``max_body`` bytes.

    Starlette's own limit (``max_body_size``) answers in plain text; this one refuses a
    declared ``Content-Length`` before reading anything, and stops a streamed body at the
    limit (the error then goes through the app's handlers).
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = int(max_body)

    def _too_big(self) -> ServiceError:
        return ServiceError(413, "body_too_large", f"request body over "
                            f"{self.max_body // 1024} KiB; send fewer ratings per request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            too_big = self._too_big()
            await _error(too_big.status, too_big.code, too_big.message)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise self._too_big()
            return message

        await self.app(scope, limited, send)


def create_app(config: ServeConfig) -> FastAPI:
    """The service for one model folder; see :mod:`collabkit.serve`."""

    ctx = ServiceContext(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.served.close()
        ctx.store.close()

    app = FastAPI(title="collabkit", version=__version__, lifespan=lifespan,
                  description="Recommendations, predictions and feedback over one saved "
                              "collabkit model. Errors: `{\"error\": {\"code\", \"message\"}}`.")
    app.state.ctx = ctx
    _install_handlers(app)
    app.include_router(router)
    app.include_router(page_router)
    app.add_middleware(BodyLimitMiddleware, max_body=config.max_body)
    app.add_middleware(ObservabilityMiddleware, metrics=ctx.metrics, log=config.access_log)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used with ``--workers N``): reads
    ``COLLABKIT_SERVE_MODEL``, ``COLLABKIT_SERVE_DB``, ``COLLABKIT_SERVE_CACHE`` and
    ``COLLABKIT_SERVE_MIN_PERSONAL``, ``COLLABKIT_SERVE_POLICY`` and ``COLLABKIT_API_KEY``."""

    one_thread_per_request()
    model = os.environ.get("COLLABKIT_SERVE_MODEL")
    if not model:
        raise ConfigError("COLLABKIT_SERVE_MODEL is not set; start the service with "
                          "`collabkit serve MODEL`")
    return create_app(ServeConfig(model=model, db=os.environ.get("COLLABKIT_SERVE_DB"),
                                  app_key=os.environ.get("COLLABKIT_API_KEY") or None,
                                  cache_size=int(os.environ.get("COLLABKIT_SERVE_CACHE",
                                                                "4096")),
                                  min_personal=int(os.environ.get(
                                      "COLLABKIT_SERVE_MIN_PERSONAL", "5")),
                                  policy=os.environ.get("COLLABKIT_SERVE_POLICY", "top")))
