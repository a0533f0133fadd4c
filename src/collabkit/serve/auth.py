"""Who may do what, and how often.

Two roles. The **app** holds ``COLLABKIT_API_KEY`` (sent as ``Authorization: Bearer KEY``) and
may read and write for any user. A **visitor** gets a server-issued user id and a secret token
from ``POST /v1/visitors`` and may read and write only their own data. Without a configured app
key only visitors exist.

The app key is compared in constant time (:func:`hmac.compare_digest`); visitor tokens are
stored only as SHA-256 hashes and looked up by hash. Neither is ever logged.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from collabkit.errors import ServiceError
from collabkit.serve.store import FeedbackStore, hash_token

__all__ = ["Principal", "Auth", "RateLimiter"]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """The caller: the app (any user) or one visitor (``user_id``)."""

    role: Literal["app", "visitor"]
    user_id: str | None = None

    @property
    def key(self) -> str:
        """Rate-limit bucket of this caller."""
        return "app" if self.role == "app" else f"visitor:{self.user_id}"

    def require_user(self, user_id: str) -> None:
        """403 unless the caller may act for ``user_id``."""
        if self.role != "app" and user_id != self.user_id:
            raise ServiceError(403, "forbidden", "a visitor may only read and write their own "
                               "data; use the user_id issued with your token")

    def require_app(self) -> None:
        if self.role != "app":
            raise ServiceError(403, "forbidden", "this endpoint needs the app key "
                               "(COLLABKIT_API_KEY) as the bearer token")


class Auth:
    """Turns an ``Authorization`` header into a :class:`Principal`."""

    def __init__(self, store: FeedbackStore, app_key: str | None) -> None:
        self.store = store
        self._app_key = app_key.encode("utf-8") if app_key else None

    @property
    def has_app_key(self) -> bool:
        return self._app_key is not None

    def principal(self, authorization: str | None) -> Principal:
        """The caller behind ``authorization``; 401 when it is missing or matches no one."""
        if not authorization:
            raise ServiceError(401, "unauthorized", "send `Authorization: Bearer TOKEN`: the "
                               "app key, or a visitor token from POST /v1/visitors",
                               _CHALLENGE)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ServiceError(401, "unauthorized", "the Authorization header must read "
                               "`Bearer TOKEN`", _CHALLENGE)
        raw = token.encode("utf-8", "surrogateescape")
        if self._app_key is not None and hmac.compare_digest(raw, self._app_key):
            return Principal("app")
        user = self.store.visitor_for(hash_token(token))
        if user is None:
            raise ServiceError(401, "unauthorized", "the bearer token is neither the app key "
                               "nor a current visitor token", _CHALLENGE)
        return Principal("visitor", user)

    def issue_visitor(self) -> tuple[str, str]:
        """A new visitor: ``(user_id, token)``; only the token's hash is stored."""
        user_id = f"v-{secrets.token_hex(8)}"
        token = secrets.token_urlsafe(32)
        self.store.add_visitor(user_id, hash_token(token))
        return user_id, token


class RateLimiter:
    """Token buckets per caller: ``rate`` requests a second, bursts of ``burst``.

    :meth:`check` raises 429 with ``Retry-After`` (whole seconds) when a bucket is empty.
    In-process: each uvicorn worker counts its own requests.
    """

    def __init__(self, rate: float, burst: int, what: str = "writes") -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.what = what
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = max(1, int((1.0 - tokens) / self.rate + 0.999))
                self._buckets[key] = (tokens, now)
                raise ServiceError(429, "rate_limited", f"too many {self.what} from this "
                                   f"client; retry after {wait} s",
                                   {"Retry-After": str(wait)})
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget idle clients (their buckets are full)
                full = [k for k, (t, _) in self._buckets.items() if t >= self.burst - 1]
                for k in full:
                    del self._buckets[k]
