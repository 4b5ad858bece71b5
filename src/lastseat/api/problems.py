"""RFC 9457 problem details: the one table from errors and HTTP statuses to problem types.

Every error answer of the API is `application/problem+json` with a stable `type` URI, so
clients branch on `type` (or `status`), never on `detail` text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from lastseat.api.route_table import route_table_of
from lastseat.domain.errors import (
    BookkeepingError,
    ConflictError,
    FencedOutError,
    HoldExpiredError,
    IdempotencyKeyMissingError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    InvalidTransitionError,
    LastseatError,
    NotFoundError,
    OverloadedError,
    PaymentDeclinedError,
    RacingWriteError,
    RequestInProgressError,
    SerializationError,
    StateConflictError,
    StoreBusyError,
    StoreError,
    UnavailableError,
    UnsafeStrategyError,
    ValidationError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://lastseat.dev/problems/"
RETRY_AFTER_S = 1
BOOKKEEPING_DETAIL = (
    "the server refused to record an inconsistent state and rolled the change back;"
    " the fault has been logged"
)
_MAX_DETAIL = 1000
_RETRY_LATER = frozenset({"overloaded", "request-in-progress"})
logger = logging.getLogger("lastseat.api")


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of error answer: its slug, status, title and the errors that raise it."""

    slug: str
    status: int
    title: str
    raised_by: tuple[type[Exception], ...] = ()

    @property
    def uri(self) -> str:
        """The stable `type` member of the problem document."""
        return TYPE_BASE + self.slug


# The one mapping table. For a status without an error, the first row with that status wins.
PROBLEM_TYPES: tuple[ProblemType, ...] = (
    ProblemType("malformed-request", 400, "Malformed request"),
    ProblemType(
        "idempotency-key-missing",
        400,
        "Idempotency-Key header missing or malformed",
        (IdempotencyKeyMissingError,),
    ),
    ProblemType("unauthorized", 401, "Missing or invalid credentials"),
    ProblemType("insufficient-funds", 402, "Insufficient funds", (InsufficientFundsError,)),
    ProblemType("payment-declined", 402, "Payment declined", (PaymentDeclinedError,)),
    ProblemType("forbidden", 403, "Not allowed for these credentials"),
    ProblemType("not-found", 404, "Not found", (NotFoundError,)),
    ProblemType("method-not-allowed", 405, "Method not allowed"),
    ProblemType("conflict", 409, "Conflict with a concurrent request", (ConflictError,)),
    ProblemType("unavailable", 409, "Already taken", (UnavailableError,)),
    ProblemType(
        "invalid-state",
        409,
        "Not allowed in the current state",
        (InvalidTransitionError, StateConflictError),
    ),
    ProblemType(
        "request-in-progress",
        409,
        "A request with this Idempotency-Key is still running",
        (RequestInProgressError,),
    ),
    ProblemType("hold-expired", 410, "Hold expired", (HoldExpiredError,)),
    ProblemType("payload-too-large", 413, "Request body too large"),
    ProblemType("unsupported-media-type", 415, "Request body must be application/json"),
    ProblemType("validation", 422, "Invalid request", (ValidationError,)),
    ProblemType(
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused for a different request",
        (IdempotencyKeyReusedError,),
    ),
    ProblemType("unsafe-strategy", 422, "Unsafe strategy refused", (UnsafeStrategyError,)),
    ProblemType("internal", 500, "Internal error"),
    ProblemType("bookkeeping-fault", 500, "Internal bookkeeping fault", (BookkeepingError,)),
    ProblemType("overloaded", 503, "Overloaded, retry later", (StoreBusyError,)),
    ProblemType("unavailable-store", 503, "Database unavailable", (StoreError,)),
)
# Errors whose message is written for operators (lock resources, request records, hosts,
# driver text): the answer says what happened in the caller's words, the log keeps the message.
# Every other error's message is written for the caller and carries no internal identifier.
_RACED_DETAIL = "another request changed this at the same moment; try again"
OPERATOR_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (FencedOutError, "a newer attempt took over while this one waited; it changed nothing"),
    (RacingWriteError, _RACED_DETAIL),
    (SerializationError, _RACED_DETAIL),
    (StoreBusyError, "the server is busy; retry in a moment"),
    (StoreError, "the database is not reachable right now; retry in a moment"),
)
_INTERNAL_DETAIL = "the server failed to answer this request; the error has been logged"
_BY_ERROR = {error: row for row in PROBLEM_TYPES for error in row.raised_by}
_BY_STATUS: dict[int, ProblemType] = {}
for _row in PROBLEM_TYPES:
    _BY_STATUS.setdefault(_row.status, _row)


def problem_for_error(exc: BaseException) -> ProblemType:
    """The problem type of an error: its most specific class listed in the table."""
    for cls in type(exc).__mro__:
        if cls in _BY_ERROR:
            return _BY_ERROR[cls]
    return _BY_STATUS[500]


def problem_for_status(status: int) -> ProblemType:
    """The problem type of a bare HTTP status (routing, auth, body limits)."""
    found = _BY_STATUS.get(status)
    if found is not None:
        return found
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ProblemType(f"http-{status}", status, phrase)


def problem_response(
    problem: ProblemType, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A problem+json answer; overload answers say when to retry."""
    body = {
        "type": problem.uri,
        "title": problem.title,
        "status": problem.status,
        "detail": " ".join(detail.split())[:_MAX_DETAIL] or problem.title,
    }
    extra = dict(headers or {})
    if problem.slug in _RETRY_LATER:
        extra.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(body, problem.status, extra or None, media_type=PROBLEM_MEDIA_TYPE)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:10]:
        where = ".".join(str(step) for step in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def public_detail(exc: BaseException) -> str:
    """The detail a caller reads for an error: its message, unless written for operators."""
    for cls in type(exc).__mro__:
        for error, detail in OPERATOR_ERRORS:
            if cls is error:
                return detail
    if problem_for_error(exc).status >= 500:
        return _INTERNAL_DETAIL
    return str(exc)


def error_response(exc: BaseException) -> JSONResponse:
    """The problem answer to a lastseat error; an operator's message goes to the log only."""
    problem = problem_for_error(exc)
    detail = public_detail(exc)
    if detail != str(exc):
        level = logging.ERROR if problem.slug == "internal" else logging.WARNING
        if isinstance(exc, ConflictError) and not isinstance(exc, FencedOutError):
            level = logging.INFO  # a lost race is the expected cost of selling the last seat
        if isinstance(exc, OverloadedError):
            level = logging.INFO  # a flood would flood the log; /metrics counts refusals
        logger.log(level, "%s answered %d: %s", type(exc).__name__, problem.status, exc)
    return problem_response(problem, detail)


async def _on_bookkeeping_error(request: Request, exc: Exception) -> Response:
    # Our own books disagree with the schema: a server fault, never "try again" (a retry
    # meets the same books). The log keeps the constraint and the route, /metrics counts it.
    assert isinstance(exc, BookkeepingError)
    logger.error("bookkeeping fault on %s %s: %s", request.method, request.url.path, exc)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.bookkeeping_fault(exc.constraint)
    return problem_response(problem_for_error(exc), BOOKKEEPING_DETAIL)


async def _on_lastseat_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return problem_response(problem_for_status(400), "the request body is not valid JSON")
    return problem_response(problem_for_status(422), _validation_detail(exc))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the first route that matched the path; FastAPI has one per method.
        headers["Allow"] = route_table_of(request.scope).allowed(request.scope)
    return problem_response(problem_for_status(exc.status_code), str(exc.detail), headers)


async def _on_unexpected_error(request: Request, exc: Exception) -> Response:
    # The last resort: the type and route are logged, never headers (they carry secrets).
    logger.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(problem_for_status(500), "unexpected error; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with a problem document."""
    app.add_exception_handler(LastseatError, _on_lastseat_error)
    app.add_exception_handler(BookkeepingError, _on_bookkeeping_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem answers with these statuses."""
    return {
        status: {
            "description": " / ".join(row.title for row in PROBLEM_TYPES if row.status == status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
