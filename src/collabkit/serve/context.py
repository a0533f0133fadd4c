"""What the service holds while it runs: its configuration (:class:`ServeConfig`) and the
per-process state every request reads (:class:`ServiceContext`): the model snapshot, the
feedback store, auth, metrics, the answer cache, the served-list log and the retrainer.

Routes import this module, and :mod:`collabkit.serve.app` builds the app from it, so no
serve module imports the app factory back.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from collabkit.errors import ConfigError
from collabkit.recommend.rerank import POLICIES
from collabkit.serve.auth import Auth, RateLimiter
from collabkit.serve.cache import AnswerCache
from collabkit.serve.engine import ModelHolder, Snapshot
from collabkit.serve.metrics import ServiceMetrics
from collabkit.serve.retrainer import Retrainer
from collabkit.serve.servedlog import ServedLog
from collabkit.serve.store import FeedbackStore, SQLiteStore

__all__ = ["MAX_BODY", "ServeConfig", "ServiceContext", "default_db_path",
           "one_thread_per_request"]

LOG = logging.getLogger("collabkit.serve")
MAX_BODY = 64 * 1024


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
        self.served = ServedLog(self.db_path, interval=config.served_log_interval,
                                writer=getattr(self.store, "writer", None))
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


def one_thread_per_request() -> None:
    """One torch thread and one BLAS thread per request, and a 1 ms GIL switch interval.

    Many requests run at once in the thread pool; multi-threaded kernels on top of that
    oversubscribe the cores. Measured on ml-latest-small (2 cores, busy machine): a fold-in's
    scoring of every item took 22 ms with OpenBLAS's default threads and 0.85 ms with one.

    A list being computed in the thread pool holds the GIL for up to the switch interval
    (5 ms by default) before the event loop, which answers cache hits and parses requests,
    gets it back; at 1 ms the 32-client load's p99 went 335 -> 296 ms (ml-latest-small) and
    413 -> 289 ms (ml-100k) at a like request rate (one pair each, load average 18-23:
    ``benchmarks/serve_load.py --reference-src``; issue 10).
    """
    import sys

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
    sys.setswitchinterval(0.001)
