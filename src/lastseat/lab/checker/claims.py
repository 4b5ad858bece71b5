"""Rules that the inventory's own bookkeeping agrees with the holds that claim it (inv. 1-2).

A pool's `held` counter and a seat's `status` / `hold_id` are caches of the holds: every claim
and release changes both in one transaction, so in any committed state they agree. Issue 8's
row-lock wedge gave a lapsed hold's units back twice while the hold stayed `active`, and
`held` drifted below the truth with no rule noticing. These rules read every final state:

- a pool's `held` is the units of its `active` holds. A hold past its `expires_at` still
  counts: holds expire lazily, and whoever takes its units must first mark it expired.
- a `held` seat names an `active` hold that claims it; a `sold` seat names a `converted` hold
  that claims it, and its one valid ticket is of that hold's order; every seat an `active`
  hold claims is `held` by that hold (not given back, not given to another hold).

A seat already reported by `seats_sold_twice` (two valid tickets, two live holds) or by
`seat_state_mismatches` (its status disagrees with its tickets) is not reported again here:
one broken seat, one violation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from lastseat.domain.holds import HoldStatus
from lastseat.domain.inventory import SeatStatus
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.inventory import sold_twice, ticket_disagreement
from lastseat.lab.checker.violations import Violation
from lastseat.service.snapshot import SeatRow


def pool_held_mismatches(facts: Facts) -> Iterator[Violation]:
    """Pools whose `held` counter is below zero or not the units of their active holds."""
    active_units: Counter[str] = Counter()
    for hold in facts.snapshot.holds:
        if hold.status == HoldStatus.ACTIVE and hold.pool_id is not None:
            active_units[hold.pool_id] += hold.quantity
    for pool in facts.snapshot.pools:
        units = active_units.get(pool.pool_id, 0)
        if pool.held < 0:
            yield Violation("pool_held_mismatch", f"pool {pool.pool_id} counts {pool.held} held")
        elif pool.held != units:
            yield Violation(
                "pool_held_mismatch",
                f"pool {pool.pool_id} counts {pool.held} held but its active holds hold {units}",
            )


def seat_hold_mismatches(facts: Facts) -> Iterator[Violation]:
    """Seats whose status and hold disagree with the holds that claim them."""
    claimed_by = _active_claims(facts)
    reported = sold_twice(facts)
    for seat in sorted(facts.snapshot.seats, key=lambda s: s.seat_id):
        if seat.seat_id in reported or ticket_disagreement(facts, seat.seat_id, seat.status):
            continue
        problem = _owner_problem(facts, seat) or _claim_problem(seat, claimed_by[seat.seat_id])
        if problem is not None:
            yield Violation("seat_hold_mismatch", f"seat {seat.seat_id} is {problem}")


def _active_claims(facts: Facts) -> defaultdict[str, list[str]]:
    """Seat id -> the active holds that claim it."""
    claims: defaultdict[str, list[str]] = defaultdict(list)
    for hold in facts.snapshot.holds:
        if hold.status == HoldStatus.ACTIVE:
            for seat_id in hold.seat_ids:
                claims[seat_id].append(hold.hold_id)
    return claims


def _owner_problem(facts: Facts, seat: SeatRow) -> str | None:
    """What is wrong with the hold a held or sold seat names, or None."""
    if seat.status == SeatStatus.AVAILABLE or seat.hold_id is None:
        return None
    wanted = HoldStatus.ACTIVE if seat.status == SeatStatus.HELD else HoldStatus.CONVERTED
    hold = facts.holds.get(seat.hold_id)
    owner = f"{seat.status} {'to' if seat.status == SeatStatus.SOLD else 'by'} hold {seat.hold_id}"
    if hold is None:
        return f"{owner}, which does not exist"
    if hold.status != wanted:
        return f"{owner}, which is {hold.status}"
    if seat.seat_id not in hold.seat_ids:
        return f"{owner}, which does not claim it"
    if seat.status == SeatStatus.SOLD:
        return _ticket_problem(facts, seat, owner)
    return None


def _ticket_problem(facts: Facts, seat: SeatRow, owner: str) -> str | None:
    """A sold seat's one valid ticket must be of its hold's order."""
    (ticket,) = facts.valid_by_seat[seat.seat_id]
    order = facts.orders.get(ticket.order_id)
    # A ticket of a missing order is ticket_without_order's to report.
    if order is None or order.hold_id == seat.hold_id:
        return None
    return f"{owner}, but its ticket {ticket.ticket_id} is of hold {order.hold_id}'s order"


def _claim_problem(seat: SeatRow, active_holds: list[str]) -> str | None:
    """An active hold's seat must be held by that hold."""
    for hold_id in active_holds:
        if seat.status != SeatStatus.HELD or seat.hold_id != hold_id:
            owner = f" by hold {seat.hold_id}" if seat.hold_id else ""
            return f"{seat.status}{owner}, but active hold {hold_id} claims it"
    return None
