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
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collabkit._version import __version__
from collabkit.errors import ConfigError, ServiceError
from collabkit.recommend.rerank import POLICIES
from collabkit.serve.auth import Auth, RateLimiter
from collabkit.serve.engine import AnswerCache, ModelHolder, Snapshot
from collabkit.serve.metrics import ObservabilityMiddleware, ServiceMetrics
from collabkit.serve.retrainer import Retrainer
from collabkit.serve.servedlog import ServedLog
from collabkit.serve.store import FeedbackStore, SQLiteStore

__all__ = ["ServeConfig", "ServiceContext", "create_app", "app_from_env", "default_db_path",
           "MAX_BODY"]

LOG = logging.getLogger("collabkit.serve")
MAX_BODY = 64 * 1024
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "body_too_large",
                 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}


def default_db_path(model: str | os.PathLike[str]) -> Path:
    """``<model folder>.feedback.sqlite3`` beside the model folder, never inside it (saving a
    model replaces its folder whole)."""
    folder = Path(model).resolve()
    return folder.with_name(f"{folder.name}.feedback.sqlite3")


@dataclass(frozen=True)
class ServeConfig:
    """Everything :func:`create_app` needs.

    Attributes
    ----------
    model : path
        A model folder saved by ``collabkit train --out`` or ``model.save``.
    db : path or None
        The SQLite feedback database; default :func:`default_db_path`.
    app_key : str or None
        The app role's bearer token; None leaves only the visitor role.
    write_rate, write_burst : float, int
        Feedback writes and deletions per second (and burst) for each visitor.
    visitor_rate, visitor_burst : float, int
        New visitors per second (and burst) for each client address.
    max_body : int
        Largest request body in bytes (413 above it).
    access_log : bool
        Log one JSON line per request on ``collabkit.serve.access``.
    cache_size : int
        Recommendation lists kept (LRU, keyed by model, user, stored ratings, k and
        exclusions, so never stale); 0 turns the cache off.
    min_personal : int
        Ratings a new user needs for the ``personal`` tier (fold-in); fewer get ``bias``.
    served_log_interval : float
        Seconds between background writes of the served-list log.
    retrain_every : int
        Retrain in a separate process after every this many new feedback rows and serve the
        new model when it is promoted (:mod:`collabkit.serve.retrainer`); 0 never does.
    policy : str
        The re-ranking policy of recommendation lists when a request names none: ``top``,
        ``mmr``, ``debias`` or ``explore`` (:mod:`collabkit.recommend.rerank`).
    """

    model: str | os.PathLike[str]
    db: str | os.PathLike[str] | None = None
    app_key: str | None = None
    write_rate: float = 5.0
    write_burst: int = 20
    visitor_rate: float = 1.0
    visitor_burst: int = 60
    max_body: int = MAX_BODY
    access_log: bool = True
    cache_size: int = 4096
    min_personal: int = 5
    served_log_interval: float = 0.5
    policy: str = "top"
    retrain_every: int = 0


class ServiceContext:
    """The shared state of one app: model holder, store, auth, limits and metrics."""

    def __init__(self, config: ServeConfig) -> None:
        if config.app_key is not None and len(config.app_key) < 16:
            raise ConfigError("COLLABKIT_API_KEY is shorter than 16 characters; use a long "
                              "random key, e.g. `python -c \"import secrets; "
                              "print(secrets.token_urlsafe(32))\"`")
        if config.min_personal < 1:
            raise ConfigError(f"--min-personal must be at least 1, got {config.min_personal}")
        if config.retrain_every < 0:
            raise ConfigError(f"--retrain-every must be 0 (never) or more, got "
                              f"{config.retrain_every}")
        if config.policy not in POLICIES:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}, got "
                              f"{config.policy!r}")
        self.config = config
        self.holder = ModelHolder(config.model)
        self.db_path = Path(config.db) if config.db is not None else \
            default_db_path(config.model)
        self.store: FeedbackStore = SQLiteStore(self.db_path)
        if not self.store.integrity_ok():
            raise ConfigError(f"feedback database {str(self.db_path)!r} failed PRAGMA "
                              "integrity_check; restore it from a backup (see the README) "
                              "or serve with a new --db")
        self.auth = Auth(self.store, config.app_key)
        self.writes = RateLimiter(config.write_rate, config.write_burst, "writes")
        self.visitors = RateLimiter(config.visitor_rate, config.visitor_burst,
                                    "new visitors")
        self.metrics = ServiceMetrics()
        self.cache = AnswerCache(config.cache_size)
        self.served = ServedLog(self.db_path, interval=config.served_log_interval)
        snap = self.holder.current
        self.metrics.set_model(snap.fingerprint, snap.loaded_at)
        self._record_catalog(snap)
        self._reload_lock = threading.Lock()
        self.retrainer: Retrainer | None = (Retrainer(self, config.retrain_every)
                                            if config.retrain_every else None)

    @property
    def snapshot(self) -> Snapshot:
        return self.holder.current

    def reload(self, path: str | os.PathLike[str] | None = None) -> tuple[Snapshot, Snapshot]:
        """Swap in the model folder's current contents (or folder ``path``, which is then
        served from on); ``(old, new)``. On failure the old model keeps serving and the error
        propagates."""
        with self._reload_lock:
            old = self.holder.current
            try:
                new = self.holder.reload(path)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            self.metrics.reloads.labels("ok").inc()
            self.metrics.set_model(new.fingerprint, new.loaded_at)
            self._record_catalog(new)
            LOG.info("model reloaded: %s -> %s", old.fingerprint, new.fingerprint)
            return old, new

    def _record_catalog(self, snap: Snapshot) -> None:
        """The model's items and training counts, for the loop report (once per model)."""
        record = getattr(self.store, "record_catalog", None)
        if record is not None:
            record(snap.fingerprint, snap.model.item_vocab_.all_ids.tolist(),
                   snap.counts.tolist())

    def reload_quietly(self) -> None:
        """For SIGHUP: reload, and log (never raise) a failure."""
        try:
            self.reload()
        except Exception as e:
            LOG.error("model reload failed, still serving the previous model: %s", e)


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = ServiceError(413, "body_too_large", f"request body over "
                               f"{self.max_body // 1024} KiB; send fewer ratings per request")
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _error(too_big.status, too_big.code, too_big.message)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise too_big
            return message

        await self.app(scope, limited, send)


def create_app(config: ServeConfig) -> FastAPI:
    """The service for one model folder; see :mod:`collabkit.serve`."""
    from collabkit.serve.page import router as page_router
    from collabkit.serve.routes import router

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
    from collabkit.serve.server import one_thread_per_request

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
