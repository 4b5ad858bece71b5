"""The sans-I/O core: what to send for a call, and what to do with each answer.

Both shells (`_sync`, `_async`) run the same loop: send the request, hand the answer or the
transport error to `Exchange`, then finish, raise, or sleep and send again. Nothing here
does I/O, so every branch is tested without a server.

Why one Idempotency-Key per call, reused on every retry:

    client                            server
    POST /purchases  key=K     -->    claims the seat, charges, commits
                               <-X-   the connection drops before the answer
    POST /purchases  key=K     -->    finds K's record: replays the 201 (Idempotent-Replayed)

With a fresh key the retry would be a second purchase: a second seat, a second charge.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from random import Random
from typing import Any

import httpx

from lastseat.client.errors import (
    LastseatClientError,
    OrderWaitTimeoutError,
    ProblemError,
    ResponseFormatError,
    TransportFailedError,
    problem_error_class,
)
from lastseat.client.models import ClientStatistics, Result
from lastseat.client.retry import RetryBudget, RetryPolicy

# Failures after which the request may or may not have reached the server; the reused
# Idempotency-Key makes a retry safe. Other transport errors (bad URL, local protocol misuse)
# would fail the same way again.
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
USER_AGENT = "lastseat-client/0.1"


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One API call: method, path, JSON body, whose credentials, and its Idempotency-Key."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    admin: bool = False
    idempotency_key: str | None = None

    def headers(self, *, token: str | None, admin_key: str | None) -> dict[str, str]:
        """The request headers: credentials, and the call's Idempotency-Key if it mutates."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        secret = admin_key if self.admin and admin_key is not None else token
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers


def read(path: str, *, admin: bool = False) -> RequestSpec:
    """A call that changes nothing: no Idempotency-Key."""
    return RequestSpec("GET", path, admin=admin)


def mutation(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    admin: bool = False,
    idempotency_key: str | None = None,
) -> RequestSpec:
    """A call that changes state, with one Idempotency-Key for all its tries."""
    key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
    return RequestSpec(method, path, body, admin=admin, idempotency_key=key)


@dataclass(frozen=True, slots=True)
class Finish:
    """The call succeeded."""

    result: Result


@dataclass(frozen=True, slots=True)
class Retry:
    """Send the same request again after `delay_s`."""

    delay_s: float


@dataclass(frozen=True, slots=True)
class Fail:
    """Raise `error`: not retryable, out of attempts, or out of budget."""

    error: LastseatClientError


Step = Finish | Retry | Fail


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _json_object(content: bytes) -> dict[str, Any] | None:
    if not content.strip():
        return {}
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def problem_error(
    status: int,
    headers: httpx.Headers,
    content: bytes,
    *,
    attempts: int,
    idempotency_key: str | None,
) -> ProblemError:
    """The error of an error answer, by its problem `type` (a non-problem body is about:blank)."""
    problem = _json_object(content) or {}
    type_uri = problem.get("type")
    cls = problem_error_class(type_uri) if isinstance(type_uri, str) else ProblemError
    return cls(
        problem,
        status=status,
        attempts=attempts,
        idempotency_key=idempotency_key,
        retry_after_s=parse_retry_after(headers.get("Retry-After")),
        replayed=is_replay(headers),
    )


def is_replay(headers: httpx.Headers) -> bool:
    """Whether the server answered from its Idempotency-Key store (Idempotent-Replayed)."""
    return str(headers.get("Idempotent-Replayed", "")).strip().lower() == "true"


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.requests = 0
        self.retries = 0
        self.transport_errors = 0
        self.budget_exhausted = 0
        self.replays = 0


class Retrier:
    """What every call of a client (and of its `with_token` copies) shares."""

    def __init__(self, policy: RetryPolicy, budget: RetryBudget, rng: Random) -> None:
        self.policy = policy
        self.budget = budget
        self.rng = rng
        self._counters = _Counters()

    def start(self, spec: RequestSpec) -> Exchange:
        """A new call: it deposits into the retry budget."""
        self.budget.deposit()
        self.count(calls=1)
        return Exchange(spec, self)

    def count(self, **increments: int) -> None:
        """Add to the counters that `statistics` reports."""
        with self._counters.lock:
            for name, by in increments.items():
                setattr(self._counters, name, getattr(self._counters, name) + by)

    def statistics(self) -> ClientStatistics:
        """Calls, HTTP requests, retries, transport errors, refused retries, replays seen."""
        c = self._counters
        with c.lock:
            return ClientStatistics(
                calls=c.calls,
                requests=c.requests,
                retries=c.retries,
                transport_errors=c.transport_errors,
                budget_exhausted=c.budget_exhausted,
                replays=c.replays,
            )


class Exchange:
    """One call's tries: the shell calls `begin` before each send, then reports the outcome."""

    def __init__(self, spec: RequestSpec, retrier: Retrier) -> None:
        self.spec = spec
        self.attempts = 0
        self._retrier = retrier

    def begin(self) -> None:
        """A try is about to be sent."""
        self.attempts += 1
        self._retrier.count(requests=1)

    def on_response(self, status: int, headers: httpx.Headers, content: bytes) -> Step:
        """Decide after an HTTP answer: a result, a retry, or an error."""
        key = self.spec.idempotency_key
        if 200 <= status < 300:
            body = _json_object(content)
            if body is None:
                return Fail(
                    ResponseFormatError(
                        f"{status} answer is not a JSON object",
                        attempts=self.attempts,
                        idempotency_key=key,
                    )
                )
            replayed = is_replay(headers)
            if replayed:
                self._retrier.count(replays=1)
            return Finish(
                Result(status, body, replayed, key, self.attempts, headers.get("Location"))
            )
        error = problem_error(status, headers, content, attempts=self.attempts, idempotency_key=key)
        if error.replayed:
            self._retrier.count(replays=1)
        return self._after_failure(error, error.may_retry, error.retry_after_s)

    def on_transport_error(self, exc: httpx.TransportError) -> Step:
        """Decide after no answer: retry what may be retried (the key makes it safe)."""
        self._retrier.count(transport_errors=1)
        error = TransportFailedError(
            f"{self.spec.method} {self.spec.path}: {type(exc).__name__}: {exc}",
            attempts=self.attempts,
            idempotency_key=self.spec.idempotency_key,
        )
        error.__cause__ = exc
        return self._after_failure(error, isinstance(exc, RETRYABLE_TRANSPORT_ERRORS), None)

    def _after_failure(
        self, error: LastseatClientError, retryable: bool, retry_after_s: float | None
    ) -> Step:
        policy = self._retrier.policy
        if not retryable or self.attempts >= policy.max_attempts:
            return Fail(error)
        if retry_after_s is not None and retry_after_s > policy.max_retry_after_s:
            return Fail(error)
        if not self._retrier.budget.try_withdraw():
            error.budget_exhausted = True
            self._retrier.count(budget_exhausted=1)
            return Fail(error)
        self._retrier.count(retries=1)
        return Retry(policy.delay_s(self.attempts - 1, retry_after_s, self._retrier.rng))


class OrderWait:
    """Polling an order until it leaves `pending_payment`, with capped doubling pauses."""

    first_pause_s = 0.05
    max_pause_s = 1.0

    def __init__(self, order_id: str, timeout_s: float, now: float) -> None:
        self.order_id = order_id
        self.deadline = now + timeout_s
        self.polls = 0

    def after(self, result: Result, now: float) -> float | None:
        """None once the order is final, else the pause before the next poll."""
        self.polls += 1
        if not result.pending:
            return None
        remaining = self.deadline - now
        if remaining <= 0:
            raise OrderWaitTimeoutError(
                f"order {self.order_id} still pending after {self.polls} polls",
                last=result,
                polls=self.polls,
            )
        return min(remaining, self.max_pause_s, self.first_pause_s * 2.0 ** min(self.polls - 1, 30))
