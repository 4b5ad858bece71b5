"""RFC 9457 problem documents of the provider: every refusal is a 4xx (or 503) with a stable type.

Bad input never reaches a 500: validation, malformed JSON, unknown routes, oversized bodies and
idempotency-key misuse all answer here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://provider.lastseat.dev/problems/"
_MAX_DETAIL = 1000
logger = logging.getLogger("lastseat.provider")


class ProblemError(Exception):
    """A request the provider refuses, answered as a problem document."""

    def __init__(
        self, status: int, slug: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})


def problem_response(
    status: int, slug: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A problem+json answer."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": " ".join(detail.split())[:_MAX_DETAIL] or title,
    }
    return JSONResponse(body, status, dict(headers or {}) or None, media_type=PROBLEM_MEDIA_TYPE)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.slug, exc.detail, exc.headers)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(400, "malformed-request", "the request body is not valid JSON")
    parts = [
        f"{'.'.join(str(step) for step in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in errors[:10]
    ]
    return problem_response(422, "validation", "; ".join(parts))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = f"http-{exc.status_code}"
    return problem_response(exc.status_code, slug, str(exc.detail), exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Last resort: log the type and route only (headers carry the api key).
    logger.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(500, "internal", "unexpected error; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with a problem document."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
