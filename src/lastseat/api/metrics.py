"""Prometheus metrics: requests and latency per route, and per strategy its sales and contention.

With several uvicorn workers, `PROMETHEUS_MULTIPROC_DIR` names a directory every worker writes
its samples to (prometheus_client's multiprocess mode), so whichever worker answers a scrape
reports the sum over all of them. Strategy counters live in each worker's strategy object;
`sync_strategy` copies their growth into Prometheus counters.
"""

from __future__ import annotations

import os
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastseat.api.route_table import route_table_of
from lastseat.service.statistics import StrategyStatistics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CLAIM_ROUTES = frozenset({"/purchases", "/holds", "/holds/{hold_id}/order"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# StrategyStatistics counter -> (metric name, scale to the metric's unit).
_STRATEGY_COUNTERS = {
    "attempts": ("lastseat_strategy_attempts", 1.0),
    "conflicts": ("lastseat_strategy_conflicts", 1.0),
    "retries": ("lastseat_strategy_retries", 1.0),
    "lock_waits": ("lastseat_strategy_lock_waits", 1.0),
    "lock_wait_ns": ("lastseat_strategy_lock_wait_seconds", 1e-9),
    "lock_held_ns": ("lastseat_strategy_lock_held_seconds", 1e-9),
    "fenced_out": ("lastseat_strategy_fenced_out", 1.0),
    "overloaded": ("lastseat_strategy_overloaded", 1.0),
    "batches": ("lastseat_strategy_batches", 1.0),
    "batched_claims": ("lastseat_strategy_batched_claims", 1.0),
}
# Checkout counter -> help text; exported as lastseat_payments_<name>_total{provider}.
_PAYMENT_COUNTERS = {
    "charges": "Charges sent to the payment provider (a retried key counts again)",
    "captured": "Charges the provider answered captured",
    "declined": "Charges the provider declined",
    "unknown": "Charges whose outcome stayed unknown (answered 202, left to the reconciler)",
    "refunds": "Refunds sent to the payment provider",
    "refunded": "Refunds the provider confirmed",
    "reconciled": "Unsettled payments a reconciler took over and drove",
}


class Metrics:
    """The metrics of one app; `render()` is the text a scrape returns."""

    def __init__(self, strategy: str) -> None:
        self.strategy = strategy
        self.multiprocess = MULTIPROC_ENV in os.environ
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lastseat_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lastseat_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.purchases = Counter(
            "lastseat_purchases", "Confirmed purchases", ["strategy"], registry=self.registry
        )
        self.conflicts = Counter(
            "lastseat_conflicts",
            "Claims answered 409 (taken, conflict or invalid state)",
            ["strategy"],
            registry=self.registry,
        )
        self.bookkeeping_faults = Counter(
            "lastseat_bookkeeping_faults",
            "Writes a schema constraint refused because lastseat's own books were wrong (5xx)",
            ["constraint"],
            registry=self.registry,
        )
        self._strategy = {
            field: Counter(
                name, f"Strategy statistic {field}", ["strategy"], registry=self.registry
            )
            for field, (name, _) in _STRATEGY_COUNTERS.items()
        }
        # batched_claims / batches is the mean batch; the largest is a gauge (max over workers).
        self.max_batch = Gauge(
            "lastseat_strategy_max_batch",
            "Claims in the largest batch (batched)",
            ["strategy"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self._payments = {
            field: Counter(f"lastseat_payments_{field}", text, ["provider"], registry=self.registry)
            for field, text in _PAYMENT_COUNTERS.items()
        }
        self._seen: dict[str, int] = {}
        self._seen_payments: dict[str, int] = {}
        self._mutex = threading.Lock()

    def observe_request(self, route: str, method: str, status: int, elapsed_s: float) -> None:
        """Count one answered request and its latency."""
        method = method if method in KNOWN_METHODS else "OTHER"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(elapsed_s)

    def purchased(self) -> None:
        """Count one confirmed purchase of this server's strategy."""
        self.purchases.labels(self.strategy).inc()

    def conflicted(self) -> None:
        """Count one claim answered 409."""
        self.conflicts.labels(self.strategy).inc()

    def bookkeeping_fault(self, constraint: str) -> None:
        """Count one write a schema constraint refused because our own books were wrong."""
        self.bookkeeping_faults.labels(constraint).inc()

    def sync_strategy(self, stats: StrategyStatistics) -> None:
        """Add what the strategy's counters grew by since the last call."""
        now = stats.as_dict()
        with self._mutex:
            for field, (_, scale) in _STRATEGY_COUNTERS.items():
                grown = now.get(field, 0) - self._seen.get(field, 0)
                if grown > 0:
                    self._strategy[field].labels(self.strategy).inc(grown * scale)
            if now.get("max_batch", 0) > self._seen.get("max_batch", 0):
                self.max_batch.labels(self.strategy).set(now["max_batch"])
            self._seen = now

    def sync_payments(self, provider: str, counts: dict[str, int]) -> None:
        """Add what the checkout's counters grew by since the last call."""
        with self._mutex:
            for field in _PAYMENT_COUNTERS:
                grown = counts.get(field, 0) - self._seen_payments.get(field, 0)
                if grown > 0:
                    self._payments[field].labels(provider).inc(grown)
            self._seen_payments = dict(counts)

    def render(self) -> bytes:
        """The Prometheus text exposition: of every worker in multiprocess mode."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def route_template(scope: Scope) -> str:
    """The route template a request is counted under, "unmatched" if no route serves its path.

    Routing records the route it ran; an answer given before routing (an Idempotency-Key
    replay or key problem, a body limit) is looked up, so it counts under its route too.
    """
    found = getattr(scope.get("route"), "path", None)
    return found if isinstance(found, str) else route_table_of(scope).template(scope)


class RequestMetricsMiddleware:
    """Time and count every request by its route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then record how it was answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = route_template(scope)
            self.metrics.observe_request(
                route, scope["method"], status, time.perf_counter() - started
            )
            if route in CLAIM_ROUTES:
                if status == 409:
                    self.metrics.conflicted()
                services = getattr(scope["app"].state, "services", None)
                if services is not None:
                    self.metrics.sync_strategy(services.booking.strategy.statistics())
