"""Prometheus metrics and structured access logs, in one pure-ASGI middleware.

Each app gets its own :class:`prometheus_client.CollectorRegistry`, so two apps in one process
(tests) never share counters. Latencies are labelled by the route template
(``/v1/users/{user_id}/recommendations``), never the raw path, so user ids neither blow up the
label set nor land in the metrics. Access-log lines are JSON on the ``collabkit.serve.access``
logger: method, route, status, milliseconds, the caller's role; never a token or a body.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ServiceMetrics", "ObservabilityMiddleware", "ACCESS_LOG"]

ACCESS_LOG = logging.getLogger("collabkit.serve.access")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """The service's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("collabkit_http_requests", "HTTP requests answered",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("collabkit_http_request_duration_seconds",
                                 "Time to answer, by endpoint", ["endpoint", "method"],
                                 buckets=_BUCKETS, registry=r)
        self.feedback_rows = Counter("collabkit_feedback_rows_written",
                                     "Feedback rows committed to the store", registry=r)
        self.recommendations = Counter("collabkit_recommendations_served",
                                       "Recommendation lists served, by fallback tier",
                                       ["tier"], registry=r)
        self.cache = Counter("collabkit_recommendation_cache",
                             "Recommendation lists answered from the cache (hit) or computed "
                             "(miss)", ["result"], registry=r)
        self.reloads = Counter("collabkit_model_reloads", "Model reloads, by outcome",
                               ["outcome"], registry=r)
        self.retrains = Counter("collabkit_retrains", "Retrains from feedback, by outcome "
                                "(promoted, kept, failed)", ["outcome"], registry=r)
        self.model_info = Gauge("collabkit_model_loaded_timestamp_seconds",
                                "When the serving model was loaded", ["fingerprint"],
                                registry=r)

        self.loop = {
            name: Gauge(f"collabkit_loop_{name}", help_, ["window"], registry=r)
            for name, help_ in (
                ("lists", "Recommendation lists served in the trailing window"),
                ("catalog_coverage", "Share of the catalogue served at least once in the "
                                     "trailing window"),
                ("exposure_gini", "Gini coefficient of how often each catalogue item was "
                                  "served in the trailing window (0 equal, 1 concentrated)"),
                ("mean_popularity_percentile", "Mean popularity percentile (training "
                                               "ratings; top = 100) of served items"))}
        self.loop_tiers = Gauge("collabkit_loop_list_share", "Share of the trailing window's "
                                "lists answered by each tier", ["window", "tier"], registry=r)

    def set_loop(self, numbers: dict[str, dict[str, Any]]) -> None:
        """The feedback-loop gauges from :func:`collabkit.serve.loopreport.recent_numbers`."""
        self.loop_tiers.clear()
        for window, row in numbers.items():
            self.loop["lists"].labels(window).set(row["n_lists"])
            self.loop["catalog_coverage"].labels(window).set(row["coverage"])
            self.loop["exposure_gini"].labels(window).set(row["gini"])
            self.loop["mean_popularity_percentile"].labels(window).set(
                row["mean_popularity_pct"])
            for key, value in row.items():
                if key.startswith("share_"):
                    self.loop_tiers.labels(window, key[len("share_"):]).set(value)

    def set_model(self, fingerprint: str, loaded_at: float) -> None:
        self.model_info.clear()
        self.model_info.labels(fingerprint).set(loaded_at)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ObservabilityMiddleware:
    """Counts, times and logs every HTTP request; adds ``X-Content-Type-Options: nosniff``."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint, method).observe(elapsed)
            if self.log and ACCESS_LOG.isEnabledFor(logging.INFO):
                state: dict[str, Any] = scope.get("state") or {}
                client = scope.get("client")
                ACCESS_LOG.info(json.dumps({
                    "ts": round(time.time(), 3), "method": method, "route": endpoint,
                    "status": status, "ms": round(elapsed * 1000, 2),
                    "role": state.get("role", "anonymous"),
                    "client": client[0] if client else None}))
