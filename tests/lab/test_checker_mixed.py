"""The mixed scenario's answer rules: a session played for real, then its world broken by hand.

The session runs in-process against a real SQLite store through `ServiceDesk` (the same path
`lastseat race --scenario mixed --servers 0` takes), with a fake clock so that holds lapse on
cue. The checker must call that world OK; each broken copy must be reported with exactly the
rule that speaks about it (the negative controls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from lastseat.bootstrap import Services, build, open_store
from lastseat.domain.clock import FakeClock
from lastseat.domain.holds import PoolClaim, SeatClaim
from lastseat.domain.money import Money
from lastseat.lab.checker import check
from lastseat.lab.checker.mixed import MIXED_KINDS
from lastseat.lab.client_buyer import Answer
from lastseat.lab.history import Operation
from lastseat.lab.scenarios import EVENT_ID, BuyerPlan, Scenario
from lastseat.lab.service_desk import ServiceDesk
from lastseat.lab.worker import Recorder
from lastseat.service.snapshot import HoldRow, OrderRow, Snapshot

SEAT_1, SEAT_2, SEAT_3, SEAT_4 = (f"{EVENT_ID}/A/0001/{n:04d}" for n in (1, 2, 3, 4))
POOL = f"{EVENT_ID}/standing"


@dataclass
class Played:
    history: list[Operation]
    snapshot: Snapshot
    answers: dict[str, Answer]  # by a name for each step
    op_ids: dict[str, str]  # the same names: their operation in the history


class Session:
    """Requests of several buyers, recorded as a race worker records them."""

    def __init__(self, services: Services) -> None:
        self.desk = ServiceDesk(services)
        self.recorder = Recorder(0)
        self.answers: dict[str, Answer] = {}
        self.op_ids: dict[str, str] = {}
        self._keys = 0

    def key(self) -> str:
        self._keys += 1
        return f"key-{self._keys}"

    def send(
        self, name: str, buyer: str, action: str, send: Callable[[], Answer], **fields: object
    ) -> Answer:
        plan = BuyerPlan(buyer, PoolClaim(EVENT_ID, POOL, 1), Money(0, "EUR"))
        answer = self.recorder.record(plan, action, send, **fields)  # type: ignore[arg-type]
        self.answers[name] = answer
        self.op_ids[name] = self.recorder.operations[-1].op_id
        return answer


def play(tmp_path: Path) -> Played:
    """Alice buys, resends, cancels (and resends it), holds and releases; Bob pays one hold on
    time, one late but free (re-claimed), one late and taken (410), reads an order and tries to
    release a paid hold (409); Carol is one cent short."""
    store = open_store(str(tmp_path / "mixed.db"))
    clock = FakeClock()
    services = build(store, "atomic", clock=clock)
    services.catalog.create_event(Scenario("mixed", 1, seats=4, capacity=5).event())
    services.wallets.fund_wallets(
        {
            "alice": Money(20_000, "EUR"),
            "bob": Money(20_000, "EUR"),
            "carol": Money(4_999, "EUR"),
        }
    )
    s = Session(services)
    d = s.desk
    seat_1 = SeatClaim(EVENT_ID, (SEAT_1,))
    k = s.key()
    bought = s.send(
        "buy", "alice", "buy", lambda: d.buy(0, "alice", seat_1, k), key=k, claim=seat_1
    )
    s.send(
        "buy again",
        "alice",
        "resend",
        lambda: d.buy(0, "alice", seat_1, k),
        key=k,
        claim=seat_1,
        resent="buy",
    )
    order_1, k = bought.order_id or "", s.key()
    s.send(
        "cancel",
        "alice",
        "cancel",
        lambda: d.cancel_at(0, "alice", order_1, k),
        key=k,
        order_id=order_1,
    )
    s.send(
        "cancel again",
        "alice",
        "resend",
        lambda: d.cancel_at(0, "alice", order_1, k),
        key=k,
        order_id=order_1,
        resent="cancel",
    )
    units, k = PoolClaim(EVENT_ID, POOL, 2), s.key()
    held = s.send(
        "hold units", "alice", "hold", lambda: d.hold(0, "alice", units, 0, k), key=k, claim=units
    )
    hold_1, k = held.hold_id or "", s.key()
    s.send(
        "release", "alice", "release", lambda: d.release(0, "alice", hold_1, k), key=k, hold=held
    )

    seat_2, k = SeatClaim(EVENT_ID, (SEAT_2,)), s.key()
    held_2 = s.send(
        "hold 2", "bob", "hold", lambda: d.hold(0, "bob", seat_2, 0, k), key=k, claim=seat_2
    )
    hold_2, k = held_2.hold_id or "", s.key()
    paid = s.send(
        "pay 2", "bob", "pay-hold", lambda: d.pay_hold(0, "bob", hold_2, k), key=k, hold=held_2
    )
    order_2 = paid.order_id or ""
    s.send("read 2", "bob", "read-order", lambda: d.read_order(0, "bob", order_2), order_id=order_2)

    seat_3, k = SeatClaim(EVENT_ID, (SEAT_3,)), s.key()
    held_3 = s.send(
        "hold 3", "bob", "hold", lambda: d.hold(0, "bob", seat_3, 1, k), key=k, claim=seat_3
    )
    clock.advance(timedelta(seconds=2))
    hold_3, k = held_3.hold_id or "", s.key()
    s.send(
        "late pay 3", "bob", "pay-hold", lambda: d.pay_hold(0, "bob", hold_3, k), key=k, hold=held_3
    )

    seat_4, k = SeatClaim(EVENT_ID, (SEAT_4,)), s.key()
    held_4 = s.send(
        "hold 4", "bob", "hold", lambda: d.hold(0, "bob", seat_4, 1, k), key=k, claim=seat_4
    )
    clock.advance(timedelta(seconds=2))
    k = s.key()
    s.send("take 4", "alice", "buy", lambda: d.buy(0, "alice", seat_4, k), key=k, claim=seat_4)
    hold_4, k = held_4.hold_id or "", s.key()
    s.send(
        "late pay 4", "bob", "pay-hold", lambda: d.pay_hold(0, "bob", hold_4, k), key=k, hold=held_4
    )

    k = s.key()
    s.send("poor buy", "carol", "buy", lambda: d.buy(0, "carol", seat_1, k), key=k, claim=seat_1)
    k = s.key()
    s.send(
        "release paid", "bob", "release", lambda: d.release(0, "bob", hold_2, k), key=k, hold=held_2
    )
    s.send("look", "bob", "read-availability", lambda: d.read_availability(0, "bob", EVENT_ID))
    snapshot = store.snapshot()
    store.close()
    return Played(s.recorder.operations, snapshot, s.answers, s.op_ids)


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    return play(tmp_path_factory.mktemp("mixed"))


def test_the_played_session_got_the_answers_a_buyer_should_get(played: Played) -> None:
    told = {name: (a.kind, a.status, a.error or a.told) for name, a in played.answers.items()}
    assert told == {
        "buy": ("ok", 201, "confirmed"),
        "buy again": ("ok", 201, "confirmed"),
        "cancel": ("ok", 200, "refunded"),
        "cancel again": ("ok", 200, "refunded"),
        "hold units": ("ok", 201, "active"),
        "release": ("ok", 200, "released"),
        "hold 2": ("ok", 201, "active"),
        "pay 2": ("ok", 201, "confirmed"),
        "read 2": ("ok", 200, "confirmed"),
        "hold 3": ("ok", 201, "active"),
        "late pay 3": ("ok", 201, "confirmed"),  # lapsed, its seat still free: re-claimed
        "hold 4": ("ok", 201, "active"),
        "take 4": ("ok", 201, "confirmed"),
        "late pay 4": ("fail", 410, "hold_expired"),  # lapsed and taken: nothing charged
        "poor buy": ("fail", 402, "insufficient_funds"),
        "release paid": ("fail", 409, "invalid-state"),
        "look": ("ok", 200, None),
    }
    assert played.answers["buy again"].replayed and played.answers["cancel again"].replayed


def test_the_checker_finds_the_played_world_correct(played: Played) -> None:
    verdict = check(played.history, played.snapshot)
    assert verdict.ok, verdict.violations


# --- the played world broken one way at a time ---------------------------------------------


def _ops(played: Played, name: str) -> list[int]:
    """Indexes of the invoke and the completion of the named step's operation."""
    return [i for i, op in enumerate(played.history) if op.op_id == played.op_ids[name]]


def _order(snapshot: Snapshot, order_id: str | None) -> OrderRow:
    return next(o for o in snapshot.orders if o.order_id == order_id)


def _hold(snapshot: Snapshot, hold_id: str | None) -> HoldRow:
    return next(h for h in snapshot.holds if h.hold_id == hold_id)


def a_cancel_acknowledged_but_its_order_reset_to_confirmed(p: Played) -> Played:
    order = _order(p.snapshot, p.answers["cancel"].order_id)
    orders = tuple(replace(o, status="confirmed") if o == order else o for o in p.snapshot.orders)
    tickets = tuple(
        replace(t, status="valid") if t.order_id == order.order_id else t
        for t in p.snapshot.tickets
    )
    return replace(p, snapshot=replace(p.snapshot, orders=orders, tickets=tickets))


def a_release_acknowledged_but_its_hold_still_active(p: Played) -> Played:
    hold = _hold(p.snapshot, p.answers["release"].hold_id)
    holds = tuple(replace(h, status="active") if h == hold else h for h in p.snapshot.holds)
    return replace(p, snapshot=replace(p.snapshot, holds=holds))


def a_cancel_refused_though_its_refund_happened(p: Played) -> Played:
    # Issue 8's finding 2: the refund committed, the answer was a 409 invalid-state.
    drop = set(_ops(p, "cancel again"))
    done = _ops(p, "cancel")[1]
    history = [
        replace(op, type="fail", status=409, error="invalid-state") if i == done else op
        for i, op in enumerate(p.history)
        if i not in drop
    ]
    return replace(p, history=history)


def a_late_payment_refused_410_but_sold_anyway(p: Played) -> Played:
    hold_id = p.answers["late pay 4"].hold_id or ""
    sold = OrderRow("ord_sneaky", "bob", hold_id, "confirmed", 5_000, "EUR", 1)
    return replace(p, snapshot=replace(p.snapshot, orders=(*p.snapshot.orders, sold)))


def a_hold_acknowledged_but_never_stored(p: Played) -> Played:
    hold_id = p.answers["hold 3"].hold_id
    holds = tuple(h for h in p.snapshot.holds if h.hold_id != hold_id)
    return replace(p, snapshot=replace(p.snapshot, holds=holds))


def a_refused_buy_that_left_a_hold_behind(p: Played) -> Played:
    stray = HoldRow("hld_stray", "carol", "active", (SEAT_1,), None, 1, 10**15)
    return replace(p, snapshot=replace(p.snapshot, holds=(*p.snapshot.holds, stray)))


def a_release_of_a_lapsed_hold_refused(p: Played) -> Played:
    # Issue 8's finding 3: another buyer's claim had expired the hold, the release got a 409.
    hold_id = p.answers["hold 4"].hold_id
    invoke = Operation("invoke", "p0-999", 0, "bob", 10**15, "release", hold_id=hold_id)
    refused = replace(invoke, type="fail", status=409, error="invalid-state")
    return replace(p, history=[*p.history, invoke, refused])


def a_read_that_saw_a_refund_of_an_order_still_confirmed(p: Played) -> Played:
    done = _ops(p, "read 2")[1]
    history = [replace(op, told="refunded") if i == done else op for i, op in enumerate(p.history)]
    return replace(p, history=history)


def an_order_left_pending(p: Played) -> Played:
    order_id = p.answers["late pay 3"].order_id
    orders = tuple(
        replace(o, status="pending_payment") if o.order_id == order_id else o
        for o in p.snapshot.orders
    )
    return replace(p, snapshot=replace(p.snapshot, orders=orders))


def a_resent_cancel_answered_differently(p: Played) -> Played:
    done = _ops(p, "cancel again")[1]
    history = [replace(op, digest="0" * 64) if i == done else op for i, op in enumerate(p.history)]
    return replace(p, history=history)


BROKEN: list[tuple[Callable[[Played], Played], set[str]]] = [
    (a_cancel_acknowledged_but_its_order_reset_to_confirmed, {"cancel_not_refunded"}),
    (a_release_acknowledged_but_its_hold_still_active, {"release_not_released"}),
    (a_cancel_refused_though_its_refund_happened, {"failure_changed_state"}),
    (a_late_payment_refused_410_but_sold_anyway, {"failure_changed_state"}),
    (a_hold_acknowledged_but_never_stored, {"hold_not_as_told"}),
    (a_refused_buy_that_left_a_hold_behind, {"failure_changed_state"}),
    (a_release_of_a_lapsed_hold_refused, {"release_refused_unpaid"}),
    (a_read_that_saw_a_refund_of_an_order_still_confirmed, {"read_not_as_stored"}),
    (an_order_left_pending, {"order_left_pending"}),
    (a_resent_cancel_answered_differently, set()),
]


@pytest.mark.parametrize(("breaker", "kinds"), BROKEN, ids=[b.__name__ for b, _ in BROKEN])
def test_a_broken_world_is_reported_by_the_mixed_rule_that_speaks_about_it(
    played: Played, breaker: Callable[[Played], Played], kinds: set[str]
) -> None:
    broken = breaker(played)
    verdict = check(broken.history, broken.snapshot)
    assert not verdict.ok
    assert verdict.kinds() & set(MIXED_KINDS) == kinds, verdict.violations


def test_a_resent_cancel_answered_differently_is_a_replay_mismatch(played: Played) -> None:
    broken = a_resent_cancel_answered_differently(played)
    assert "replay_mismatch" in check(broken.history, broken.snapshot).kinds()


def test_the_mixed_rules_stay_silent_on_a_history_without_mixed_actions(played: Played) -> None:
    buys_only = [
        op for op in played.history if op.action in ("buy", "resend") and op.resent in (None, "buy")
    ]
    verdict = check(buys_only, played.snapshot)
    assert not verdict.kinds() & set(MIXED_KINDS)
