"""The errors of the client: one root, problem documents by `type`, and transport failures.

Each RFC 9457 problem type of the API has its own class; `retryable` says whether the client
may try the same call again (with the same Idempotency-Key). Unknown types are retried only
when their status is 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from lastseat.client.models import Result

PROBLEM_TYPE_BASE = "https://lastseat.dev/problems/"


class LastseatClientError(Exception):
    """The root of every error the client raises; says how many HTTP tries the call made."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 1,
        idempotency_key: str | None = None,
        budget_exhausted: bool = False,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.idempotency_key = idempotency_key
        self.budget_exhausted = budget_exhausted


class TransportFailedError(LastseatClientError):
    """No HTTP answer (connect error, timeout, dropped connection).

    For a mutation the outcome is unknown: call again with the same `idempotency_key`.
    """


class ResponseFormatError(LastseatClientError):
    """A success answer whose body is not a JSON object."""


class OrderWaitTimeoutError(LastseatClientError):
    """An order was still `pending_payment` when `wait_for_order` ran out of time."""

    def __init__(self, message: str, *, last: Result, polls: int) -> None:
        super().__init__(message, attempts=polls)
        self.last = last


class ProblemError(LastseatClientError):
    """An error answer (RFC 9457 problem+json); subclasses are one per problem `type`."""

    slug: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        problem: Mapping[str, Any],
        *,
        status: int,
        attempts: int = 1,
        idempotency_key: str | None = None,
        retry_after_s: float | None = None,
        budget_exhausted: bool = False,
        replayed: bool = False,
    ) -> None:
        self.problem: dict[str, Any] = dict(problem)
        # The answer came from the server's Idempotency-Key store: the first attempt's answer.
        self.replayed = replayed
        self.status = status
        self.type = _text(problem.get("type"), "about:blank")
        self.title = _text(problem.get("title"), _phrase(status))
        self.detail = _text(problem.get("detail"), "")
        self.retry_after_s = retry_after_s
        message = f"{status} {self.title}" + (f": {self.detail}" if self.detail else "")
        super().__init__(
            message,
            attempts=attempts,
            idempotency_key=idempotency_key,
            budget_exhausted=budget_exhausted,
        )

    @property
    def may_retry(self) -> bool:
        """Whether the same call may be tried again: by type, or 5xx for unknown types."""
        if type(self).slug is None:
            return self.status >= 500
        return self.retryable


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class MalformedRequestError(ProblemError):
    """400: the body is not valid JSON."""

    slug = "malformed-request"


class IdempotencyKeyMissingError(ProblemError):
    """400: a mutation without an Idempotency-Key header."""

    slug = "idempotency-key-missing"


class UnauthorizedError(ProblemError):
    """401: missing or invalid credentials."""

    slug = "unauthorized"


class InsufficientFundsError(ProblemError):
    """402: the wallet cannot pay."""

    slug = "insufficient-funds"


class PaymentDeclinedError(ProblemError):
    """402: the payment provider declined the charge."""

    slug = "payment-declined"


class ForbiddenError(ProblemError):
    """403: not allowed for these credentials."""

    slug = "forbidden"


class NotFoundError(ProblemError):
    """404: no such event, buyer, hold or order (for this caller)."""

    slug = "not-found"


class ConflictError(ProblemError):
    """409: a concurrent writer won; trying again may succeed."""

    slug = "conflict"
    retryable = True


class UnavailableError(ProblemError):
    """409: the seats or units are taken; never retried."""

    slug = "unavailable"


class InvalidStateError(ProblemError):
    """409: not allowed in the current state (e.g. cancelling a cancelled order)."""

    slug = "invalid-state"


class RequestInProgressError(ProblemError):
    """409: a call with the same Idempotency-Key is still running; retried after Retry-After."""

    slug = "request-in-progress"
    retryable = True


class HoldExpiredError(ProblemError):
    """410: the hold lapsed and its inventory could not be re-claimed."""

    slug = "hold-expired"


class PayloadTooLargeError(ProblemError):
    """413: the request body is too large."""

    slug = "payload-too-large"


class ValidationError(ProblemError):
    """422: the request is well-formed JSON but invalid."""

    slug = "validation"


class IdempotencyKeyReusedError(ProblemError):
    """422: the Idempotency-Key was used before for a different request; never retried."""

    slug = "idempotency-key-reused"


class InternalError(ProblemError):
    """500: the server failed unexpectedly; not retried (a replay would answer the same)."""

    slug = "internal"


class BookkeepingFaultError(ProblemError):
    """500: the server caught its own books going wrong and refused the write; never retried
    (the same request meets the same books)."""

    slug = "bookkeeping-fault"


class OverloadedError(ProblemError):
    """503: the server is overloaded; retried after Retry-After."""

    slug = "overloaded"
    retryable = True


class StoreUnavailableError(ProblemError):
    """503: the server's database is unavailable; retried after Retry-After."""

    slug = "unavailable-store"
    retryable = True


PROBLEM_ERRORS: dict[str, type[ProblemError]] = {
    PROBLEM_TYPE_BASE + cls.slug: cls
    for cls in (
        MalformedRequestError,
        IdempotencyKeyMissingError,
        UnauthorizedError,
        InsufficientFundsError,
        PaymentDeclinedError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        UnavailableError,
        InvalidStateError,
        RequestInProgressError,
        HoldExpiredError,
        PayloadTooLargeError,
        ValidationError,
        IdempotencyKeyReusedError,
        InternalError,
        BookkeepingFaultError,
        OverloadedError,
        StoreUnavailableError,
    )
    if cls.slug is not None
}


def problem_error_class(type_uri: str) -> type[ProblemError]:
    """The error class of a problem `type` URI; `ProblemError` itself for unknown types."""
    return PROBLEM_ERRORS.get(type_uri, ProblemError)
