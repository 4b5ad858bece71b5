"""A race buyer that buys over HTTP, mapping problem+json answers to outcomes.

Definite answers become the same errors the in-process buyer sees (so the history records
them as `fail`); a 5xx, a timeout or a dropped connection leaves the outcome unknown and is
raised as `UnknownOutcomeError` (recorded as `info`).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from lastseat.domain.errors import (
    ConflictError,
    InsufficientFundsError,
    LastseatError,
    NotFoundError,
    StoreBusyError,
    UnavailableError,
    ValidationError,
)
from lastseat.domain.holds import Claim, SeatClaim
from lastseat.service.auth import issue_token

REQUEST_TIMEOUT_S = 30.0
_PROBLEMS: dict[str, type[LastseatError]] = {
    "unavailable": UnavailableError,
    "conflict": ConflictError,
    "insufficient-funds": InsufficientFundsError,
    "overloaded": StoreBusyError,
    "not-found": NotFoundError,
}


class UnknownOutcomeError(Exception):
    """The server may or may not have sold: 5xx, timeout or a dropped connection."""


class HttpBuyer:
    """Quick-buys through a fleet of servers over one thread-safe keep-alive client.

    The client is made before the race starts: making one costs milliseconds (TLS context),
    which, paid by each thread at its first request, would stagger the buyers' start.
    """

    def __init__(self, urls: tuple[str, ...], token_secret: bytes, connections: int) -> None:
        self.urls = urls
        self.token_secret = token_secret
        limits = httpx.Limits(
            max_connections=connections * len(urls),
            max_keepalive_connections=connections * len(urls),
        )
        self._client = httpx.Client(timeout=REQUEST_TIMEOUT_S, limits=limits)

    def buy(self, index: int, buyer_id: str, claim: Claim) -> tuple[str, tuple[str, ...]]:
        """Buy on server `index mod N`; return (order id, ticket codes)."""
        url = self.urls[index % len(self.urls)]
        headers = {
            "Authorization": f"Bearer {issue_token(self.token_secret, buyer_id)}",
            "Idempotency-Key": str(uuid.uuid4()),  # one logical purchase, one key
        }
        try:
            answer = self._client.post(f"{url}/purchases", json=_body(claim), headers=headers)
        except httpx.TransportError as exc:
            raise UnknownOutcomeError(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code == 201:
            body = answer.json()
            return body["order"]["order_id"], tuple(t["code"] for t in body["tickets"])
        raise _problem(answer)

    def close(self) -> None:
        """Close the client and its connections."""
        self._client.close()


def _body(claim: Claim) -> dict[str, Any]:
    if isinstance(claim, SeatClaim):
        return {"event_id": claim.event_id, "seat_ids": list(claim.seat_ids)}
    pool_name = claim.pool_id.removeprefix(f"{claim.event_id}/")
    return {"event_id": claim.event_id, "pool": pool_name, "quantity": claim.quantity}


def _problem(answer: httpx.Response) -> Exception:
    if answer.status_code >= 500 and answer.status_code != 503:
        return UnknownOutcomeError(f"HTTP {answer.status_code}")
    try:
        problem = answer.json()
        slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
        detail = str(problem.get("detail", ""))
    except ValueError:
        return UnknownOutcomeError(f"HTTP {answer.status_code} without a problem body")
    error = _PROBLEMS.get(slug)
    if error is not None:
        return error(detail)
    if answer.status_code == 503:
        return UnknownOutcomeError(f"HTTP 503 {slug}: {detail}")
    return ValidationError(f"HTTP {answer.status_code} {slug}: {detail}")
