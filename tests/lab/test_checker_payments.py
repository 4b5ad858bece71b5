"""The checker on a small race paid through an external provider, then broken one way at a time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from lastseat.lab.checker import (
    KINDS,
    PROVIDER_KINDS,
    ProviderLedger,
    ProviderPayment,
    ProviderRefund,
    Verdict,
    check,
)
from lastseat.lab.history import Operation, OpType, answer_digest, read_history, write_history
from lastseat.service.snapshot import (
    HoldRow,
    OrderRow,
    PaymentRow,
    SeatRow,
    Snapshot,
    TicketRow,
)

EVENT = "ev1"
SEAT_1, SEAT_2, SEAT_3 = (f"{EVENT}/A/0001/{n:04d}" for n in (1, 2, 3))
PRICE, CURRENCY = 5_000, "EUR"
ALICE_KEY = "key-alice"
ALICE_BODY = {"order_id": "o1", "status": "confirmed", "tickets": [{"code": "code-o1"}]}


@dataclass
class World:
    """One externally paid race: history, our rows, and the provider's records.

    Each order is built consistent across all three; breaking it takes an explicit edit.
    """

    history: list[Operation] = field(default_factory=list)
    seats: dict[str, SeatRow] = field(
        default_factory=lambda: {
            s: SeatRow(s, EVENT, "available", None, PRICE) for s in (SEAT_1, SEAT_2, SEAT_3)
        }
    )
    holds: list[HoldRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    tickets: list[TicketRow] = field(default_factory=list)
    rows: list[PaymentRow] = field(default_factory=list)
    payments: list[ProviderPayment] = field(default_factory=list)
    refunds: list[ProviderRefund] = field(default_factory=list)

    def order(self, buyer: str, order_id: str, seat_id: str, status: str, row: str) -> None:
        """An order for one seat; `row` is our payment row's status."""
        hold = {"confirmed": "converted", "refunded": "converted", "failed": "released"}
        self.holds.append(
            HoldRow(f"h-{order_id}", buyer, hold.get(status, "expired"), (seat_id,), None, 0, 0)
        )
        self.orders.append(OrderRow(order_id, buyer, f"h-{order_id}", status, PRICE, CURRENCY, 1))
        payment_id = None if row == "pending" else f"pay-{order_id}"
        self.rows.append(
            PaymentRow(order_id, f"lastseat-pay-{order_id}", row, PRICE, CURRENCY, payment_id, 1)
        )
        ticket = "valid" if status == "confirmed" else "void"
        self.tickets.append(
            TicketRow(f"t-{order_id}", order_id, seat_id, None, f"code-{order_id}", ticket)
        )
        if status == "confirmed":
            self.seats[seat_id] = replace(
                self.seats[seat_id], status="sold", hold_id=f"h-{order_id}"
            )

    def capture(self, order_id: str, status: str = "captured", amount: int = PRICE) -> None:
        self.payments.append(
            ProviderPayment(f"pay-{order_id}", f"lastseat-pay-{order_id}", status, amount, CURRENCY)
        )

    def refund(self, order_id: str, refund_id: str | None = None) -> None:
        self.refunds.append(
            ProviderRefund(
                refund_id or f"re-{order_id}",
                f"pay-{order_id}",
                f"lastseat-refund-{order_id}",
                PRICE,
                CURRENCY,
            )
        )

    def attempt(
        self,
        buyer: str,
        outcome: OpType,
        *,
        action: str = "buy",
        seat_ids: Sequence[str] = (),
        order_id: str | None = None,
        codes: Sequence[str] = (),
        error: str | None = None,
        key: str | None = None,
        status: int | None = None,
        body: object = None,
        replayed: bool = False,
    ) -> None:
        """An invoke saying what was tried and under which key, then the answer."""
        op_id = f"op{len(self.history)}"
        self.history.append(
            Operation(
                "invoke",
                op_id,
                1,
                buyer,
                len(self.history),
                action,
                seat_ids=tuple(seat_ids),
                idempotency_key=key,
            )
        )
        self.history.append(
            Operation(
                outcome,
                op_id,
                1,
                buyer,
                len(self.history),
                order_id=order_id,
                ticket_codes=tuple(codes),
                error=error,
                status=status,
                digest=None if body is None else answer_digest(body),
                replayed=replayed,
            )
        )

    def snapshot(self) -> Snapshot:
        return Snapshot(
            seats=tuple(self.seats.values()),
            holds=tuple(self.holds),
            orders=tuple(self.orders),
            tickets=tuple(self.tickets),
            payments=tuple(self.rows),
        )

    def ledger(self) -> ProviderLedger:
        return ProviderLedger(tuple(self.payments), tuple(self.refunds))

    def check(self) -> Verdict:
        return check(self.history, self.snapshot(), self.ledger())

    def row(self, order_id: str) -> PaymentRow:
        return next(r for r in self.rows if r.order_id == order_id)

    def alice_buys(self, action: str = "buy", *, digest_of: object = ALICE_BODY) -> None:
        """alice's purchase of SEAT_1 under ALICE_KEY, answered 201 (replayed on a resend)."""
        self.attempt(
            "alice",
            "ok",
            action=action,
            seat_ids=[SEAT_1],
            order_id="o1",
            codes=["code-o1"],
            key=ALICE_KEY,
            status=201,
            body=digest_of,
            replayed=action == "resend",
        )


def good_world() -> World:
    """alice buys (her request sent twice), bob's capture lands after his hold lapsed, carol
    is declined, dave cancels after buying, erin's request never reached a server."""
    w = World()
    w.order("alice", "o1", SEAT_1, "confirmed", row="captured")
    w.capture("o1")
    w.alice_buys()
    w.alice_buys("resend")
    # A third send of alice's key while the first still ran: told only "in progress".
    w.attempt(
        "alice",
        "info",
        action="resend",
        key=ALICE_KEY,
        status=409,
        error="request_in_progress",
        body={"type": "request-in-progress"},
    )
    w.order("bob", "o2", SEAT_2, "expired", row="refunded")
    w.capture("o2")
    w.refund("o2")
    w.attempt(
        "bob",
        "info",
        seat_ids=[SEAT_2],
        order_id="o2",
        key="key-bob",
        status=202,
        body={"order_id": "o2", "status": "pending_payment"},
    )
    w.order("carol", "o3", SEAT_2, "failed", row="declined")
    w.capture("o3", status="declined")
    w.attempt(
        "carol",
        "fail",
        seat_ids=[SEAT_2],
        order_id="o3",
        key="key-carol",
        status=402,
        error="payment_declined",
        body={"type": "payment-declined"},
    )
    w.order("dave", "o4", SEAT_3, "refunded", row="refunded")
    w.capture("o4")
    w.refund("o4")
    w.attempt(
        "dave",
        "ok",
        seat_ids=[SEAT_3],
        order_id="o4",
        codes=["code-o4"],
        key="key-dave",
        status=201,
        body={"order_id": "o4"},
    )
    w.attempt("dave", "ok", action="refund", order_id="o4", key="key-dave-r", status=200)
    w.attempt("erin", "info", seat_ids=[SEAT_3], key="key-erin", error="ConnectError")
    return w


# --- ways to break the good world, in place -----------------------------------------------------


def an_order_captured_twice(w: World) -> None:
    w.payments.append(replace(w.payments[0], payment_id="pay-o1-again"))


def a_payment_the_provider_says_it_captured_twice(w: World) -> None:
    w.payments[0] = replace(w.payments[0], captures=2)


def a_cancelled_order_refunded_twice(w: World) -> None:
    w.refund("o4", refund_id="re-o4-again")


def an_expired_order_whose_capture_was_never_refunded(w: World) -> None:
    w.refunds = [r for r in w.refunds if r.payment_id != "pay-o2"]


def an_expired_order_whose_refund_is_still_pending(w: World) -> None:
    an_expired_order_whose_capture_was_never_refunded(w)
    w.rows = [replace(r, status="refund_pending") if r.order_id == "o2" else r for r in w.rows]


def a_declined_order_the_provider_captured(w: World) -> None:
    w.payments = [
        replace(p, status="captured") if p.payment_id == "pay-o3" else p for p in w.payments
    ]


def a_capture_for_an_order_that_does_not_exist(w: World) -> None:
    w.capture("o-ghost")


def a_refunded_capture_for_an_order_that_does_not_exist(w: World) -> None:
    w.capture("o-ghost")
    w.refund("o-ghost")


def a_confirmed_order_the_provider_only_authorized(w: World) -> None:
    w.payments[0] = replace(w.payments[0], status="authorized")


def a_confirmed_order_whose_capture_was_refunded(w: World) -> None:
    w.refund("o1")


def a_capture_one_cent_short(w: World) -> None:
    w.payments[0] = replace(w.payments[0], amount_minor=PRICE - 1)


def a_row_naming_another_payment_than_the_capture(w: World) -> None:
    w.rows[0] = replace(w.rows[0], payment_id="pay-other")


def a_row_saying_refunded_for_a_capture_still_kept(w: World) -> None:
    w.rows[0] = replace(w.rows[0], status="refunded")
    w.orders[0] = replace(w.orders[0], status="refunded")
    w.tickets[0] = replace(w.tickets[0], status="void")
    w.seats[SEAT_1] = replace(w.seats[SEAT_1], status="available", hold_id=None)
    w.history = [op for op in w.history if op.action == "refund" or op.buyer_id != "alice"]


def an_order_left_pending_with_its_payment_unknown(w: World) -> None:
    w.order("gina", "o5", SEAT_3, "pending_payment", row="pending")


def a_pending_answer_whose_order_is_still_pending(w: World) -> None:
    an_order_left_pending_with_its_payment_unknown(w)
    w.attempt("gina", "info", seat_ids=[SEAT_3], order_id="o5", key="key-gina", status=202)


def an_unknown_answer_resolved_only_through_its_key(w: World) -> None:
    an_order_left_pending_with_its_payment_unknown(w)
    w.attempt("gina", "info", seat_ids=[SEAT_3], key="key-gina", error="ReadTimeout")
    w.attempt("gina", "info", action="resend", order_id="o5", key="key-gina", status=202)


def a_pending_answer_naming_an_order_that_does_not_exist(w: World) -> None:
    w.attempt("gina", "info", seat_ids=[SEAT_3], order_id="o-none", key="key-gina", status=202)


def a_replay_with_another_body(w: World) -> None:
    w.alice_buys("resend", digest_of={**ALICE_BODY, "status": "pending_payment"})


def a_replay_with_another_status(w: World) -> None:
    w.history[3] = replace(w.history[3], status=200)


def a_stored_refusal_replayed_as_another_refusal(w: World) -> None:
    for error in ("invalid-state", "unavailable"):
        w.attempt("hugo", "fail", key="key-hugo", status=409, error=error, body={"type": error})


BROKEN_WORLDS: list[tuple[Callable[[World], None], set[str]]] = [
    # What the provider kept is then more than the confirmed orders' price.
    (an_order_captured_twice, {"double_capture", "money_unbalanced"}),
    (a_payment_the_provider_says_it_captured_twice, {"double_capture"}),
    (a_cancelled_order_refunded_twice, {"double_capture", "money_unbalanced"}),
    (
        an_expired_order_whose_capture_was_never_refunded,
        {"capture_without_ticket", "confirmed_without_charge", "money_unbalanced"},
    ),
    (
        an_expired_order_whose_refund_is_still_pending,
        {
            "capture_without_ticket",
            "confirmed_without_charge",
            "money_unbalanced",
            "unresolved_payment",
        },
    ),
    (a_declined_order_the_provider_captured, {"capture_without_ticket", "money_unbalanced"}),
    (a_capture_for_an_order_that_does_not_exist, {"capture_without_ticket", "money_unbalanced"}),
    (a_refunded_capture_for_an_order_that_does_not_exist, {"capture_without_ticket"}),
    (
        a_confirmed_order_the_provider_only_authorized,
        {"confirmed_without_charge", "money_unbalanced"},
    ),
    (
        a_confirmed_order_whose_capture_was_refunded,
        {"confirmed_without_charge", "money_unbalanced"},
    ),
    (a_capture_one_cent_short, {"money_unbalanced"}),
    (a_row_naming_another_payment_than_the_capture, {"money_unbalanced"}),
    (
        a_row_saying_refunded_for_a_capture_still_kept,
        {"capture_without_ticket", "confirmed_without_charge", "money_unbalanced"},
    ),
    (an_order_left_pending_with_its_payment_unknown, {"unresolved_payment"}),
    (a_pending_answer_whose_order_is_still_pending, {"unresolved_payment"}),
    (an_unknown_answer_resolved_only_through_its_key, {"unresolved_payment"}),
    (a_pending_answer_naming_an_order_that_does_not_exist, {"unresolved_payment"}),
    (a_replay_with_another_body, {"replay_mismatch"}),
    (a_replay_with_another_status, {"replay_mismatch"}),
    (a_stored_refusal_replayed_as_another_refusal, {"replay_mismatch"}),
]


def test_the_good_world_passes_with_no_violations() -> None:
    verdict = good_world().check()

    assert verdict.violations == ()
    assert verdict.ok


@pytest.mark.parametrize(
    ("breakage", "kinds"),
    [pytest.param(breakage, kinds, id=breakage.__name__) for breakage, kinds in BROKEN_WORLDS],
)
def test_a_broken_world_is_reported_with_exactly_its_kinds(
    breakage: Callable[[World], None], kinds: set[str]
) -> None:
    w = good_world()
    breakage(w)

    verdict = w.check()

    assert verdict.kinds() == kinds
    assert not verdict.ok


def test_every_provider_kind_and_the_extended_one_is_caught_in_some_broken_world() -> None:
    caught = set().union(*(kinds for _, kinds in BROKEN_WORLDS))

    assert caught == PROVIDER_KINDS | {"confirmed_without_charge"}
    assert set(KINDS) > PROVIDER_KINDS


def test_violations_come_grouped_in_kinds_order() -> None:
    w = good_world()
    an_expired_order_whose_refund_is_still_pending(w)
    a_replay_with_another_body(w)

    kinds = [v.kind for v in w.check().violations]

    assert kinds == sorted(kinds, key=KINDS.index)
    assert kinds[-1] == "replay_mismatch"


def test_a_violation_names_the_order_and_the_provider_ids() -> None:
    w = good_world()
    an_order_captured_twice(w)

    details = " / ".join(v.detail for v in w.check().violations)

    assert "order o1" in details
    assert "pay-o1-again" in details


def test_the_good_world_counts_captures_refunds_resolved_unknowns_and_replays() -> None:
    verdict = good_world().check()

    # bob's 202 (o2 expired) and the in-progress answer under alice's key (o1 confirmed);
    # erin's request named no order and no other answer under her key did.
    assert (verdict.captures, verdict.refunds, verdict.unknown_resolved, verdict.replays) == (
        3,
        2,
        2,
        1,
    )
    assert verdict.tickets_sold == 1


def test_a_payment_captured_twice_counts_two_captures() -> None:
    w = good_world()
    a_payment_the_provider_says_it_captured_twice(w)

    assert w.check().captures == 4


def test_without_the_provider_ledger_externally_paid_orders_raise_no_wallet_violation() -> None:
    w = good_world()
    an_order_captured_twice(w)  # invisible without the provider's records

    verdict = check(w.history, w.snapshot())

    assert verdict.ok
    assert (verdict.captures, verdict.refunds) == (0, 0)


def test_a_replay_mismatch_is_caught_without_the_provider_ledger() -> None:
    w = good_world()
    a_replay_with_another_body(w)

    assert check(w.history, w.snapshot()).kinds() == {"replay_mismatch"}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (202, None),
        (409, "request_in_progress"),
        (409, "request-in-progress"),
        (409, "RequestInProgressError"),
        (409, "conflict"),
        (500, "HTTP 500"),
        (503, "overloaded"),
        (None, "ReadTimeout"),
    ],
)
def test_an_answer_that_is_not_stored_final_may_differ_from_the_stored_one(
    status: int | None, error: str | None
) -> None:
    w = good_world()
    w.attempt(
        "alice",
        "info",
        action="resend",
        key=ALICE_KEY,
        status=status,
        error=error,
        body={"type": "something else"},
    )

    assert "replay_mismatch" not in w.check().kinds()


def test_payments_and_refunds_under_keys_that_are_not_ours_are_left_out() -> None:
    w = good_world()
    w.payments.append(ProviderPayment("pay-x", "someone-else-1", "captured", 999, CURRENCY))
    w.refunds.append(ProviderRefund("re-x", "pay-x", "someone-else-2", 999, CURRENCY))

    verdict = w.check()

    assert verdict.ok
    assert verdict.captures == 3


def test_a_refund_of_an_unknown_payment_belongs_to_the_order_its_key_names() -> None:
    w = good_world()
    w.refunds.append(
        ProviderRefund("re-lost", "pay-unknown", "lastseat-refund-o1", PRICE, CURRENCY)
    )

    verdict = w.check()

    assert verdict.kinds() == {"confirmed_without_charge", "money_unbalanced"}
    assert any("order o1" in v.detail for v in verdict.violations)


def test_an_unknown_answer_is_held_to_the_order_another_answer_under_its_key_named() -> None:
    w = good_world()
    an_unknown_answer_resolved_only_through_its_key(w)
    timed_out = w.history[-3]

    details = [v.detail for v in w.check().violations if timed_out.op_id in v.detail]

    assert timed_out.error == "ReadTimeout"
    assert details == [
        f"op {timed_out.op_id} of gina was left unknown, and order o5 is pending_payment"
    ]


def test_a_pending_answer_is_reported_besides_its_pending_order() -> None:
    w = good_world()
    a_pending_answer_whose_order_is_still_pending(w)

    details = [v.detail for v in w.check().violations]

    assert any("left pending (202)" in d for d in details)
    assert any(d.startswith("order o5 of gina is still pending_payment") for d in details)


def test_a_202_the_lab_polled_to_an_outcome_counts_as_a_pending_answer() -> None:
    w = good_world()
    # bob's client polled his 202 until the order was final and recorded that outcome.
    w.attempt("bob", "fail", order_id="o2", key="key-bob", status=202, error="hold_expired")
    an_order_left_pending_with_its_payment_unknown(w)
    w.attempt("gina", "ok", seat_ids=[SEAT_3], order_id="o5", key="key-gina", status=202)

    verdict = w.check()

    assert verdict.unknown_resolved == 2 + 1
    assert any(
        v.detail.endswith("left pending (202), and order o5 is pending_payment")
        for v in verdict.violations
    )


# --- the history's new fields --------------------------------------------------------------------


OLD_LINE = (
    '{"type":"ok","op_id":"p1-1","process":1,"buyer_id":"alice","time_ns":5,"action":"buy",'
    '"seat_ids":["s1"],"pool_id":null,"quantity":1,"order_id":"o1","ticket_codes":["c1"],'
    '"error":null}'
)


def test_a_history_line_written_before_the_http_fields_still_parses() -> None:
    op = Operation.from_json(OLD_LINE)

    assert (op.order_id, op.ticket_codes) == ("o1", ("c1",))
    assert (op.idempotency_key, op.status, op.digest, op.replayed) == (None, None, None, False)


def test_the_http_fields_survive_a_write_and_a_read(tmp_path: Path) -> None:
    ops = [op for op in good_world().history if op.idempotency_key or op.status]
    path = tmp_path / "history.jsonl"

    write_history(path, ops)

    assert list(read_history(path)) == ops
    assert {(op.action, op.replayed) for op in read_history(path)} >= {
        ("resend", False),  # the invoke
        ("buy", True),  # its completion: the action comes from the invoke
    }


def test_answer_digest_is_the_sha256_of_canonical_json() -> None:
    digest = answer_digest({"b": [1, 2], "a": "é"})

    assert digest == answer_digest(json.loads('{"a": "é", "b": [1, 2]}'))
    assert digest != answer_digest({"b": [2, 1], "a": "é"})
    assert digest == hashlib.sha256(b'{"a":"\\u00e9","b":[1,2]}').hexdigest()
