"""Rules for seats and pools: a seat is sold once (invariant 1), a pool never oversells (2)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from lastseat.domain.holds import HoldStatus
from lastseat.domain.inventory import SeatStatus
from lastseat.domain.orders import OrderStatus
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.violations import Violation


def oversold(facts: Facts) -> int:
    """Tickets issued beyond what exists: extra tickets per seat, units beyond each pool."""
    seats = sum(len(tickets) - 1 for tickets in facts.valid_by_seat.values())
    pools = sum(
        max(0, facts.valid_by_pool.get(pool.pool_id, 0) - pool.capacity)
        for pool in facts.snapshot.pools
    )
    return seats + pools


# --- invariant 1: a seat is sold once -------------------------------------------------------


def seats_sold_twice(facts: Facts) -> Iterator[Violation]:
    """Seats with two valid tickets, or claimed by two live holds at once."""
    for seat_id, tickets in sorted(facts.valid_by_seat.items()):
        if len(tickets) > 1:
            ids = ", ".join(sorted(t.ticket_id for t in tickets))
            yield Violation("seat_sold_twice", f"seat {seat_id} has valid tickets {ids}")
    for seat_id, hold_ids in sorted(live_claims(facts).items()):
        if len(hold_ids) > 1:
            ids = ", ".join(sorted(hold_ids))
            yield Violation("seat_sold_twice", f"seat {seat_id} is claimed by live holds {ids}")


def live_claims(facts: Facts) -> dict[str, list[str]]:
    """Seat id -> the holds still claiming it: active ones, and those a confirmed order kept.

    An active hold past its expiry still counts: whoever takes its seat must first mark it
    expired, or a late payment on it would sell the seat a second time.
    """
    kept = {o.hold_id for o in facts.orders.values() if o.status == OrderStatus.CONFIRMED}
    claims: dict[str, list[str]] = defaultdict(list)
    for hold in facts.snapshot.holds:
        if hold.status == HoldStatus.ACTIVE or (
            hold.status == HoldStatus.CONVERTED and hold.hold_id in kept
        ):
            for seat_id in hold.seat_ids:
                claims[seat_id].append(hold.hold_id)
    return claims


def sold_twice(facts: Facts) -> set[str]:
    """The seats seats_sold_twice reports: other seat rules leave them to it."""
    tickets = {seat_id for seat_id, found in facts.valid_by_seat.items() if len(found) > 1}
    return tickets | {seat_id for seat_id, holds in live_claims(facts).items() if len(holds) > 1}


def seat_state_mismatches(facts: Facts) -> Iterator[Violation]:
    """Seats `sold` without a valid ticket, or with one but not `sold`."""
    statuses = {seat.seat_id: seat.status for seat in facts.snapshot.seats}
    for seat_id in sorted(statuses.keys() | facts.valid_by_seat.keys()):
        problem = ticket_disagreement(facts, seat_id, statuses.get(seat_id, "unknown"))
        if problem is not None:
            yield Violation("seat_state_mismatch", f"seat {seat_id} {problem}")


def ticket_disagreement(facts: Facts, seat_id: str, status: str) -> str | None:
    """How a seat's status disagrees with its valid tickets, or None when it agrees."""
    valid = len(facts.valid_by_seat.get(seat_id, ()))
    if status == SeatStatus.SOLD and valid == 0:
        return "is sold without a ticket"
    if status != SeatStatus.SOLD and valid > 0:
        return f"is {status} but has a valid ticket"
    return None


# --- invariant 2: a pool never oversells ------------------------------------------------------


def pools_over_capacity(facts: Facts) -> Iterator[Violation]:
    """Pools with more valid tickets than capacity, or counting held + sold above it."""
    for pool in facts.snapshot.pools:
        valid = facts.valid_by_pool.get(pool.pool_id, 0)
        if valid > pool.capacity:
            yield Violation(
                "pool_over_capacity",
                f"pool {pool.pool_id} has {valid} valid tickets for capacity {pool.capacity}",
            )
        if pool.held + pool.sold > pool.capacity:
            yield Violation(
                "pool_over_capacity",
                f"pool {pool.pool_id} counts {pool.held} held + {pool.sold} sold"
                f" for capacity {pool.capacity}",
            )


def pool_count_mismatches(facts: Facts) -> Iterator[Violation]:
    """Pools whose `sold` counter is below zero or not their valid tickets (a lost update).

    The `held` counter is claims.pool_held_mismatches' to check.
    """
    for pool in facts.snapshot.pools:
        valid = facts.valid_by_pool.get(pool.pool_id, 0)
        if pool.sold < 0:
            yield Violation("pool_count_mismatch", f"pool {pool.pool_id} counts {pool.sold} sold")
        elif pool.sold != valid:
            yield Violation(
                "pool_count_mismatch",
                f"pool {pool.pool_id} counts {pool.sold} sold but has {valid} valid tickets",
            )
