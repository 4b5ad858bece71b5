"""The mixed scenario's in-process desk: the service layer, with the API's key bookkeeping.

`ServiceDesk` answers a session's requests (lastseat.lab.mixed.Desk) by calling the services
directly, as `--servers 0` races do, and runs each keyed write under an `IdempotencyService`
record the way the API's middleware does: a final answer is stored and replayed to a resend
with the same key, a 5xx or transient 409 releases the key for the next attempt to take over.
Answers are made into the same `Answer` the HTTP desk makes, from bodies shaped like the API's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from typing import Any

from lastseat.bootstrap import Services
from lastseat.client import Result
from lastseat.domain.errors import (
    ConflictError,
    HoldExpiredError,
    InsufficientFundsError,
    InvalidTransitionError,
    LastseatError,
    NotFoundError,
    PaymentDeclinedError,
    StoreBusyError,
    StoreError,
    UnavailableError,
)
from lastseat.domain.holds import ClaimRequest, Hold, HoldStatus, PoolClaim, SeatClaim
from lastseat.domain.orders import OrderStatus
from lastseat.lab.client_buyer import Answer, result_answer
from lastseat.lab.history import answer_digest
from lastseat.service.booking import Purchase
from lastseat.service.idempotency import (
    IdempotencyService,
    InProgress,
    Replay,
    RequestFence,
    RequestKey,
    StoredResponse,
    fingerprint,
)

_PROBLEMS: tuple[tuple[type[LastseatError], int, str], ...] = (
    (UnavailableError, 409, "unavailable"),
    (InsufficientFundsError, 402, "insufficient_funds"),
    (PaymentDeclinedError, 402, "payment_declined"),
    (HoldExpiredError, 410, "hold_expired"),
    (InvalidTransitionError, 409, "invalid-state"),
    (ConflictError, 409, "conflict"),
    (NotFoundError, 404, "not_found"),
    (StoreBusyError, 503, "busy"),
)
# Answers a key does not keep (the API's middleware releases the key): 5xx and these 409s.
_TRANSIENT = frozenset({"conflict"})


class ServiceDesk:
    """A Desk over the service layer: keyed writes run under `IdempotencyService` records."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.keys = IdempotencyService(services.store)

    def buy(self, index: int, buyer_id: str, claim: ClaimRequest, key: str) -> Answer:
        def run(fence: RequestFence) -> tuple[int, dict[str, Any]]:
            return 201, _purchase_body(self.services.checkout.quick_buy(buyer_id, claim, fence))

        return self._keyed(buyer_id, "POST", "/purchases", _claim_body(claim), key, run)

    def hold(self, index: int, buyer_id: str, claim: ClaimRequest, ttl_s: int, key: str) -> Answer:
        ttl = timedelta(seconds=ttl_s) if ttl_s else None

        def run(fence: RequestFence) -> tuple[int, dict[str, Any]]:
            hold = self.services.booking.place_hold(buyer_id, claim, ttl, fence)
            return 201, self._hold_body(hold)

        body = {**_claim_body(claim), "ttl_s": ttl_s}
        return self._keyed(buyer_id, "POST", "/holds", body, key, run)

    def pay_hold(self, index: int, buyer_id: str, hold_id: str, key: str) -> Answer:
        def run(fence: RequestFence) -> tuple[int, dict[str, Any]]:
            return 201, _purchase_body(self.services.checkout.pay_hold(buyer_id, hold_id, fence))

        path = f"/holds/{hold_id}/order"
        return replace(self._keyed(buyer_id, "POST", path, {}, key, run), hold_id=hold_id)

    def release(self, index: int, buyer_id: str, hold_id: str, key: str) -> Answer:
        def run(fence: RequestFence) -> tuple[int, dict[str, Any]]:
            hold = self.services.booking.release_hold(buyer_id, hold_id, fence)
            return 200, self._hold_body(hold)

        path = f"/holds/{hold_id}"
        return replace(self._keyed(buyer_id, "DELETE", path, {}, key, run), hold_id=hold_id)

    def cancel_at(self, index: int, buyer_id: str, order_id: str, key: str) -> Answer:
        def run(fence: RequestFence) -> tuple[int, dict[str, Any]]:
            self.services.checkout.cancel_order(buyer_id, order_id, fence)
            return 200, _purchase_body(self.services.booking.purchase(buyer_id, order_id))

        path = f"/orders/{order_id}/cancel"
        return replace(self._keyed(buyer_id, "POST", path, {}, key, run), order_id=order_id)

    def read_order(self, index: int, buyer_id: str, order_id: str) -> Answer:
        answer, _ = _run(
            "", lambda: (200, _purchase_body(self.services.booking.purchase(buyer_id, order_id)))
        )
        return replace(answer, order_id=order_id)

    def read_availability(self, index: int, buyer_id: str, event_id: str) -> Answer:
        def run() -> tuple[int, dict[str, Any]]:
            found = self.services.booking.availability(event_id)
            pools = {p.pool_id: p.available for p in found.pools}
            return 200, {"seats_available": found.seats_available, "pools": pools}

        return _run("", run)[0]

    def _hold_body(self, hold: Hold) -> dict[str, Any]:
        lapsed = hold.status is HoldStatus.ACTIVE and hold.is_lapsed(
            self.services.booking.clock.now()
        )
        claim = hold.claim
        return {
            "hold_id": hold.hold_id,
            "status": HoldStatus.EXPIRED.value if lapsed else hold.status.value,
            "seat_ids": list(claim.seat_ids) if isinstance(claim, SeatClaim) else [],
            "pool_id": claim.pool_id if isinstance(claim, PoolClaim) else None,
            "quantity": claim.quantity,
        }

    def _keyed(
        self,
        buyer_id: str,
        method: str,
        path: str,
        body: dict[str, Any],
        key: str,
        run: Callable[[RequestFence], tuple[int, dict[str, Any]]],
    ) -> Answer:
        """What the API's Idempotency-Key middleware does around one write, in-process."""
        raw = json.dumps(body, sort_keys=True).encode()
        try:
            begun = self.keys.begin(
                RequestKey(buyer_id, method, path, key), fingerprint(method, path, raw)
            )
        except StoreError as exc:
            return Answer("info", key, None, None, error=f"store: {exc}")
        if isinstance(begun, Replay):
            stored = json.loads(begun.response.body)
            return replace(_answer_of(begun.response.status, stored, key), replayed=True)
        if isinstance(begun, InProgress):
            return Answer("info", key, 409, None, error="request_in_progress")
        fence = begun.fence
        answer, raw_answer = _run(key, lambda: run(fence))
        # Bookkeeping after the answer: a store hiccup here leaves the key to its lease.
        with suppress(StoreError):
            if answer.status is not None and _kept(answer):
                self.keys.finish(fence, StoredResponse(answer.status, (), raw_answer))
            else:
                self.keys.release(fence)
        return answer


def _kept(answer: Answer) -> bool:
    status = answer.status or 500
    return status < 500 and not (status == 409 and answer.error in _TRANSIENT)


def _run(key: str, call: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[Answer, bytes]:
    """The answer to one call, and the body it was made from (what a replay sends back)."""
    try:
        status, body = call()
    except LastseatError as exc:
        for error_type, code, name in _PROBLEMS:
            if isinstance(exc, error_type):
                status, body = code, {"type": name, "status": code}
                break
        else:
            if isinstance(exc, StoreError):
                return Answer("info", key, None, None, error=f"store: {exc}"), b"{}"
            status, body = 400, {"type": type(exc).__name__, "status": 400}
    return _answer_of(status, body, key), json.dumps(body, sort_keys=True).encode()


def _answer_of(status: int, body: dict[str, Any], key: str) -> Answer:
    if status >= 400:
        kind = "info" if status >= 500 else "fail"
        return Answer(kind, key, status, answer_digest(body), error=str(body.get("type")))
    return result_answer(Result(status, body, False, key or None, 1, None), key)


def _claim_body(claim: ClaimRequest) -> dict[str, Any]:
    if isinstance(claim, SeatClaim):
        return {"event_id": claim.event_id, "seat_ids": list(claim.seat_ids)}
    if isinstance(claim, PoolClaim):
        return {"event_id": claim.event_id, "pool": claim.pool_id, "quantity": claim.quantity}
    return {"event_id": claim.event_id, "section": claim.section, "quantity": claim.quantity}


def _purchase_body(purchase: Purchase) -> dict[str, Any]:
    order = purchase.order
    return {
        "order": {
            "order_id": order.order_id,
            "status": order.status.value,
            "amount_minor": order.amount.amount_minor,
            "currency": order.amount.currency,
            "pending": order.status is OrderStatus.PENDING_PAYMENT,
        },
        "tickets": [
            {
                "ticket_id": t.ticket_id,
                "seat_id": t.seat_id,
                "pool_id": t.pool_id,
                "code": t.code,
                "status": t.status.value,
            }
            for t in purchase.tickets
        ],
    }
