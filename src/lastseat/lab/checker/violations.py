"""What a rule reports: one broken invariant, of one of a fixed set of kinds."""

from __future__ import annotations

from dataclasses import dataclass

KINDS: tuple[str, ...] = (
    "seat_sold_twice",
    "seat_state_mismatch",
    "pool_over_capacity",
    "pool_count_mismatch",
    "double_charge",
    "charge_without_order",
    "confirmed_without_charge",
    "ticket_without_order",
    "money_not_conserved",
    "negative_balance",
    "missing_tickets",
    "failure_with_tickets",
    "standing_charge",
    "duplicate_ticket_code",
    "incomplete_operation",
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant, with the ids that break it."""

    kind: str
    detail: str
