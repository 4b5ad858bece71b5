"""A race buyer that buys over HTTP through the SDK (`lastseat.client`), as a real client would.

One Idempotency-Key per purchase, reused by the SDK on every retry; a 202 (payment outcome not
known yet) is followed by polling the order until it is final. With `resend_rate` > 0 a
purchase is sent a second time with the same key once answered (a client or load balancer
retrying a request whose answer it lost): the lab records both answers so the checker can
verify that the replay is identical to the original.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lastseat.client import (
    ConflictError,
    HoldExpiredError,
    InsufficientFundsError,
    LastseatClient,
    LastseatClientError,
    NotFoundError,
    OrderWaitTimeoutError,
    OverloadedError,
    PaymentDeclinedError,
    ProblemError,
    RequestInProgressError,
    Result,
    RetryPolicy,
    UnavailableError,
)
from lastseat.domain.holds import ClaimRequest, PoolClaim, SeatClaim
from lastseat.lab.history import answer_digest
from lastseat.service.auth import issue_token

REQUEST_TIMEOUT_S = 30.0
ORDER_WAIT_S = 15.0
LAB_RETRY = RetryPolicy(max_attempts=6, base_delay_s=0.05, max_delay_s=1.0)

# Answers after which nothing was sold and nothing is left charged: definite failures.
_DEFINITE: dict[type[ProblemError], str] = {
    UnavailableError: "unavailable",
    InsufficientFundsError: "insufficient_funds",
    PaymentDeclinedError: "payment_declined",
    HoldExpiredError: "hold_expired",
    ConflictError: "conflict",
    OverloadedError: "busy",
    NotFoundError: "not_found",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got: the outcome as the history records it, and the raw answer."""

    kind: str  # ok | fail | info
    idempotency_key: str
    status: int | None  # None: no HTTP answer at all
    digest: str | None
    replayed: bool = False
    order_id: str | None = None
    codes: tuple[str, ...] = ()
    error: str | None = None
    hold_id: str | None = None
    seat_ids: tuple[str, ...] = ()  # what a hold or an order holds, as the answer names it
    pool_id: str | None = None
    quantity: int = 0
    told: str | None = None  # the hold's or order's status the answer reported


class ClientBuyer:
    """Quick-buys through a fleet of servers with one SDK client per server (thread-safe)."""

    def __init__(
        self,
        urls: tuple[str, ...],
        token_secret: bytes,
        *,
        resend_rate: float = 0.0,
        cancel_rate: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.token_secret = token_secret
        self.resend_rate = resend_rate
        self.cancel_rate = cancel_rate
        self._clients = [
            LastseatClient(url, timeout_s=REQUEST_TIMEOUT_S, retry=LAB_RETRY) for url in urls
        ]
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()

    def buy(self, index: int, buyer_id: str, claim: ClaimRequest, key: str) -> Answer:
        """Buy on server `index mod N` with idempotency key `key`, following a 202 to the end."""
        client = self._client(index, buyer_id)
        answer = _answer(lambda: client.purchase(**_claim_args(claim), idempotency_key=key), key)
        if answer.status == 202 and answer.order_id is not None:
            return _settled(client, answer)
        return answer

    def should_resend(self) -> bool:
        """Whether to send this purchase again with its key (the duplicate-request rate)."""
        return self._roll(self.resend_rate)

    def should_cancel(self) -> bool:
        """Whether the buyer cancels the order just bought (the refund rate)."""
        return self._roll(self.cancel_rate)

    def cancel(self, index: int, buyer_id: str, order_id: str, key: str) -> Answer:
        """Cancel an order (refund through the provider) with idempotency key `key`."""
        client = self._client(index, buyer_id)
        answer = _answer(lambda: client.cancel_order(order_id, idempotency_key=key), key)
        return replace(answer, order_id=order_id, codes=())

    def _roll(self, rate: float) -> bool:
        with self._random_lock:
            return self._random.random() < rate

    def resend(self, index: int, buyer_id: str, claim: ClaimRequest, key: str) -> Answer:
        """The same purchase again, with the same key, on the next server: no waiting."""
        client = self._client(index + 1, buyer_id)
        return _answer(lambda: client.purchase(**_claim_args(claim), idempotency_key=key), key)

    # -- the mixed scenario's other requests (`index` picks the server) ----------------------

    def hold(self, index: int, buyer_id: str, claim: ClaimRequest, ttl_s: int, key: str) -> Answer:
        """Place a hold (`ttl_s` 0: the server's default TTL)."""
        client = self._client(index, buyer_id)
        ttl = ttl_s or None
        return _answer(
            lambda: client.place_hold(**_claim_args(claim), ttl_s=ttl, idempotency_key=key), key
        )

    def pay_hold(self, index: int, buyer_id: str, hold_id: str, key: str) -> Answer:
        """Pay a hold, following a 202 to the end."""
        client = self._client(index, buyer_id)
        answer = _answer(lambda: client.pay_hold(hold_id, idempotency_key=key), key)
        if answer.status == 202 and answer.order_id is not None:
            answer = _settled(client, answer)
        return replace(answer, hold_id=hold_id)

    def release(self, index: int, buyer_id: str, hold_id: str, key: str) -> Answer:
        """Release a hold."""
        client = self._client(index, buyer_id)
        answer = _answer(lambda: client.release_hold(hold_id, idempotency_key=key), key)
        return replace(answer, hold_id=hold_id)

    def cancel_at(self, index: int, buyer_id: str, order_id: str, key: str) -> Answer:
        """Cancel an order, keeping what the answer says about it (its status)."""
        client = self._client(index, buyer_id)
        answer = _answer(lambda: client.cancel_order(order_id, idempotency_key=key), key)
        return replace(answer, order_id=order_id)

    def read_order(self, index: int, buyer_id: str, order_id: str) -> Answer:
        """Read one of the buyer's orders."""
        client = self._client(index, buyer_id)
        return replace(_answer(lambda: client.order(order_id), ""), order_id=order_id)

    def read_availability(self, index: int, buyer_id: str, event_id: str) -> Answer:
        """Read what the event has left."""
        client = self._client(index, buyer_id)
        return _answer(lambda: client.availability(event_id), "")

    def statistics(self) -> dict[str, int]:
        """The SDK's counters over every client: requests, retries, replays seen, ..."""
        totals: dict[str, int] = {}
        for client in self._clients:
            for name, value in vars_of(client.statistics()).items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def close(self) -> None:
        """Close every client's connections."""
        for client in self._clients:
            client.close()

    def _client(self, index: int, buyer_id: str) -> LastseatClient:
        token = issue_token(self.token_secret, buyer_id)
        return self._clients[index % len(self._clients)].with_token(token)


def vars_of(statistics: object) -> dict[str, int]:
    """The integer counters of a statistics dataclass."""
    fields = getattr(statistics, "__dataclass_fields__", {})
    return {name: value for name in fields if isinstance(value := getattr(statistics, name), int)}


def _claim_args(claim: ClaimRequest) -> dict[str, Any]:
    if isinstance(claim, SeatClaim):
        return {"event_id": claim.event_id, "seat_ids": list(claim.seat_ids)}
    if not isinstance(claim, PoolClaim):
        return {"event_id": claim.event_id, "section": claim.section, "quantity": claim.quantity}
    return {
        "event_id": claim.event_id,
        "pool": claim.pool_id.removeprefix(f"{claim.event_id}/"),
        "quantity": claim.quantity,
    }


def _answer(call: Callable[[], Result], key: str) -> Answer:
    try:
        result = call()
    except ProblemError as exc:
        return problem_answer(exc, key)
    except LastseatClientError as exc:
        return Answer("info", key, None, None, error=f"{type(exc).__name__}: {exc}")
    return result_answer(result, key)


def result_answer(result: Result, key: str) -> Answer:
    digest = answer_digest(result.body)
    if result.status == 202 or result.pending:
        return Answer("info", key, result.status, digest, result.replayed, result.order_id)
    answer = Answer("ok", key, result.status, digest, result.replayed, result.order_id)
    if "hold_id" in result.body:
        return replace(answer, **hold_fields(result.body))
    if result.order_id is None:
        return answer
    return replace(answer, told=result.order_status, **ticket_fields(result.body))


def hold_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What a hold answer says: its id, status and claim."""
    pool_id = body.get("pool_id")
    return {
        "hold_id": str(body["hold_id"]),
        "told": str(body.get("status")),
        "seat_ids": tuple(str(s) for s in body.get("seat_ids") or ()),
        "pool_id": pool_id if isinstance(pool_id, str) else None,
        "quantity": int(body.get("quantity") or 0),
    }


def ticket_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What an order answer's tickets name: their codes, seats, pool and count."""
    tickets = [t for t in body.get("tickets", []) if isinstance(t, dict)]
    pools = {t["pool_id"] for t in tickets if isinstance(t.get("pool_id"), str)}
    return {
        "codes": tuple(str(t["code"]) for t in tickets if "code" in t),
        "seat_ids": tuple(sorted(str(t["seat_id"]) for t in tickets if t.get("seat_id"))),
        "pool_id": next(iter(pools)) if len(pools) == 1 else None,
        "quantity": len(tickets),
    }


def problem_answer(exc: ProblemError, key: str) -> Answer:
    digest = answer_digest(exc.problem)
    for error_type, name in _DEFINITE.items():
        if isinstance(exc, error_type):
            return Answer("fail", key, exc.status, digest, exc.replayed, error=name)
    if isinstance(exc, RequestInProgressError):
        return Answer("info", key, exc.status, digest, error="request_in_progress")
    if exc.status >= 500:
        return Answer("info", key, exc.status, digest, error=f"HTTP {exc.status}")
    return Answer("fail", key, exc.status, digest, error=exc.type.rsplit("/", 1)[-1])


def _settled(client: LastseatClient, pending: Answer) -> Answer:
    """Poll a 202's order until it is final; still pending at the deadline stays `info`."""
    assert pending.order_id is not None
    try:
        final = client.wait_for_order(pending.order_id, ORDER_WAIT_S)
    except OrderWaitTimeoutError:
        return pending
    except LastseatClientError as exc:
        return Answer(
            "info", pending.idempotency_key, pending.status, pending.digest, error=str(exc)
        )
    status = final.order_status
    if status == "confirmed":
        return Answer(
            "ok",
            pending.idempotency_key,
            202,
            pending.digest,
            order_id=final.order_id,
            told=status,
            **ticket_fields(final.body),
        )
    error = {"failed": "payment_declined", "expired": "hold_expired"}.get(status or "", status)
    return Answer(
        "fail", pending.idempotency_key, 202, pending.digest, order_id=final.order_id, error=error
    )
