"""The `mixed` scenario at run time: one buyer's session, through the service or over HTTP.

A session (lastseat.lab.sessions) is played against a `Desk`: `ClientBuyer` over HTTP (the
SDK, one client per server) or `ServiceDesk` in-process (lastseat.lab.service_desk: the
service layer, with the Idempotency-Key bookkeeping of the API's middleware, so resends
replay in-process too).
Every request goes through `Record`, which writes its invoke and its answer to the history.

Design note - what the buyer does when it does not learn the outcome. A write answered with
nothing (the server died: a transport error after the SDK's own retries), a 5xx or a 409
`request-in-progress` is sent once more with the same key on the next server, as a client
whose answer was lost would; its outcome is then whatever that resend is told. Follow-ups
(pay, release, cancel, read) use only what an answer said: no hold id, no payment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from lastseat.domain.holds import ClaimRequest
from lastseat.lab.client_buyer import Answer
from lastseat.lab.history import (
    BUY_ACTION,
    CANCEL_ACTION,
    HOLD_ACTION,
    PAY_HOLD_ACTION,
    READ_AVAILABILITY_ACTION,
    READ_ORDER_ACTION,
    RELEASE_ACTION,
    RESEND_ACTION,
)
from lastseat.lab.scenarios import EVENT_ID, BuyerPlan
from lastseat.lab.sessions import BUY_FLOW, HOLD_FLOW, PAY, RELEASE, Step

# Answers that leave a write's outcome unknown: worth one resend with the same key.
_UNKNOWN_ERRORS = frozenset({"request_in_progress"})


class Desk(Protocol):
    """Where a session's requests go; `index` picks the server (in-process: ignored)."""

    def buy(self, index: int, buyer_id: str, claim: ClaimRequest, key: str) -> Answer: ...
    def hold(
        self, index: int, buyer_id: str, claim: ClaimRequest, ttl_s: int, key: str
    ) -> Answer: ...
    def pay_hold(self, index: int, buyer_id: str, hold_id: str, key: str) -> Answer: ...
    def release(self, index: int, buyer_id: str, hold_id: str, key: str) -> Answer: ...
    def cancel_at(self, index: int, buyer_id: str, order_id: str, key: str) -> Answer: ...
    def read_order(self, index: int, buyer_id: str, order_id: str) -> Answer: ...
    def read_availability(self, index: int, buyer_id: str, event_id: str) -> Answer: ...


class Record(Protocol):
    """Writes one request's invoke, sends it, writes its answer; returns the answer."""

    def __call__(
        self,
        plan: BuyerPlan,
        action: str,
        send: Callable[[], Answer],
        *,
        key: str | None = None,
        claim: ClaimRequest | None = None,
        hold: Answer | None = None,
        order_id: str | None = None,
        resent: str | None = None,
    ) -> Answer: ...


def play_session(
    plan: BuyerPlan, desk: Desk, record: Record, route: int, new_key: Callable[[], str]
) -> None:
    """Every flow of one buyer's session, in order."""
    session = _Session(plan, desk, record, route, new_key)
    for step in plan.steps:
        if step.flow == BUY_FLOW:
            session.buy(step)
        elif step.flow == HOLD_FLOW:
            session.hold(step)
        else:
            session.look()


class _Session:
    def __init__(
        self,
        plan: BuyerPlan,
        desk: Desk,
        record: Record,
        route: int,
        new_key: Callable[[], str],
    ) -> None:
        self.plan, self.desk, self.record = plan, desk, record
        self.route, self.new_key = route, new_key
        self.buyer = plan.buyer_id

    def buy(self, step: Step) -> None:
        assert step.claim is not None
        claim, key = step.claim, self.new_key()
        bought = self._write(
            BUY_ACTION,
            key,
            lambda route: self.desk.buy(route, self.buyer, claim, key),
            step.resend,
            claim=claim,
        )
        self._after_purchase(step, bought)

    def hold(self, step: Step) -> None:
        assert step.claim is not None
        claim, key = step.claim, self.new_key()
        held = self._write(
            HOLD_ACTION,
            key,
            lambda route: self.desk.hold(route, self.buyer, claim, step.ttl_s, key),
            step.resend and step.then not in (PAY, RELEASE),
            claim=claim,
        )
        hold_id = held.hold_id
        if held.kind != "ok" or hold_id is None or step.then not in (PAY, RELEASE):
            return
        if step.wait_s:
            time.sleep(step.wait_s)  # the buyer's think time: past a short hold's expiry
        key = self.new_key()
        if step.then == PAY:
            paid = self._write(
                PAY_HOLD_ACTION,
                key,
                lambda route: self.desk.pay_hold(route, self.buyer, hold_id, key),
                step.resend,
                hold=held,
            )
            self._after_purchase(step, paid)
        else:
            self._write(
                RELEASE_ACTION,
                key,
                lambda route: self.desk.release(route, self.buyer, hold_id, key),
                step.resend,
                hold=held,
            )

    def look(self) -> None:
        self.record(
            self.plan,
            READ_AVAILABILITY_ACTION,
            lambda: self.desk.read_availability(self.route, self.buyer, EVENT_ID),
        )

    def _after_purchase(self, step: Step, bought: Answer) -> None:
        order_id = bought.order_id
        if bought.kind != "ok" or order_id is None:
            return
        if step.read_order:
            self.record(
                self.plan,
                READ_ORDER_ACTION,
                lambda: self.desk.read_order(self.route, self.buyer, order_id),
                order_id=order_id,
            )
        if step.cancel:
            key = self.new_key()
            self._write(
                CANCEL_ACTION,
                key,
                lambda route: self.desk.cancel_at(route, self.buyer, order_id, key),
                step.resend,
                order_id=order_id,
            )

    def _write(
        self,
        action: str,
        key: str,
        send: Callable[[int], Answer],
        resend: bool,
        *,
        claim: ClaimRequest | None = None,
        hold: Answer | None = None,
        order_id: str | None = None,
    ) -> Answer:
        """Send a write; resend it with its key if its outcome is unknown, or if planned."""
        fields: dict[str, Any] = {"key": key, "claim": claim, "hold": hold, "order_id": order_id}
        answer = self.record(self.plan, action, lambda: send(self.route), **fields)
        if _unknown(answer) or resend:
            again = self.record(
                self.plan, RESEND_ACTION, lambda: send(self.route + 1), resent=action, **fields
            )
            if answer.kind == "info" and again.kind != "info":
                answer = again
        return answer


def _unknown(answer: Answer) -> bool:
    return answer.kind == "info" and (
        answer.status is None or answer.status >= 500 or answer.error in _UNKNOWN_ERRORS
    )
