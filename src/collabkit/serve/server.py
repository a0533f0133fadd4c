"""Running the service: ``collabkit serve MODEL`` ends up in :func:`run`.

With one worker (the default) the app lives in this process and ``SIGHUP`` reloads the model
folder in a background thread: requests in flight finish on the old model, none fail, and
the swap is one reference assignment. With ``--workers N`` uvicorn's supervisor runs N
processes, each building the app from environment variables (:func:`app_from_env`); there
``SIGHUP`` is uvicorn's own: it restarts the workers, which load the model afresh.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from collabkit.errors import ConfigError
from collabkit.serve.context import one_thread_per_request

__all__ = ["run", "one_thread_per_request"]

LOG = logging.getLogger("collabkit.serve")


def _logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("collabkit.serve", "collabkit.serve.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level.upper())
        lg.propagate = False


def run(model: str, *, db: str | None = None, host: str = "127.0.0.1", port: int = 8000,
        workers: int = 1, cache_size: int = 4096, min_personal: int = 5,
        policy: str = "top", retrain_every: int = 0, log_level: str = "info",
        access_log: bool = True) -> None:
    """Serve ``model`` until interrupted. The app key comes from ``COLLABKIT_API_KEY``."""
    import uvicorn

    from collabkit.serve.app import ServeConfig, create_app, default_db_path

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    if retrain_every < 0:
        raise ConfigError(f"--retrain-every must be 0 (never) or more, got {retrain_every}")
    if retrain_every and workers > 1:
        raise ConfigError("--retrain-every needs --workers 1: the process that retrains must be "
                          "the one that serves, to swap the new model in")
    if min_personal < 1:
        raise ConfigError(f"--min-personal must be at least 1, got {min_personal}")
    if cache_size < 0:
        raise ConfigError(f"--cache-size must be 0 (off) or more, got {cache_size}")
    app_key = os.environ.get("COLLABKIT_API_KEY") or None
    if host not in ("127.0.0.1", "localhost", "::1") and app_key is None:
        LOG.warning("serving on %s without COLLABKIT_API_KEY: only visitors can use it", host)
    db_path = str(Path(db) if db else default_db_path(model))
    common: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                              "access_log": False, "timeout_graceful_shutdown": 10,
                              "server_header": False}
    if workers > 1:
        os.environ["COLLABKIT_SERVE_MODEL"] = str(model)
        os.environ["COLLABKIT_SERVE_DB"] = db_path
        os.environ["COLLABKIT_SERVE_CACHE"] = str(cache_size)
        os.environ["COLLABKIT_SERVE_MIN_PERSONAL"] = str(min_personal)
        os.environ["COLLABKIT_SERVE_POLICY"] = policy
        create_app(ServeConfig(model=model, db=db_path, app_key=app_key,
                               min_personal=min_personal, policy=policy))  # fail fast, here
        _logging(log_level)
        one_thread_per_request()
        uvicorn.run("collabkit.serve.app:app_from_env", factory=True, workers=workers,
                    **common)
        return
    app = create_app(ServeConfig(model=model, db=db_path, app_key=app_key,
                                 access_log=access_log, cache_size=cache_size,
                                 min_personal=min_personal, policy=policy,
                                 retrain_every=retrain_every))
    ctx = app.state.ctx
    _logging(log_level)
    one_thread_per_request()
    LOG.info("serving %s (model %s) on http://%s:%d  page: /  docs: /docs  feedback db: %s",
             model, ctx.snapshot.fingerprint, host, port, db_path)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(
        target=ctx.reload_quietly, name="collabkit-reload", daemon=True).start())
    uvicorn.Server(uvicorn.Config(app, **common)).run()
