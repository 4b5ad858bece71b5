"""What a rule reports: one broken invariant, of one of a fixed set of kinds."""

from __future__ import annotations

from dataclasses import dataclass

KINDS: tuple[str, ...] = (
    "seat_sold_twice",
    "seat_state_mismatch",
    "seat_hold_mismatch",
    "pool_over_capacity",
    "pool_count_mismatch",
    "pool_held_mismatch",
    "double_charge",
    "double_capture",
    "charge_without_order",
    "capture_without_ticket",
    "confirmed_without_charge",
    "ticket_without_order",
    "money_not_conserved",
    "money_unbalanced",
    "negative_balance",
    "missing_tickets",
    "failure_with_tickets",
    "standing_charge",
    "unresolved_payment",
    "replay_mismatch",
    "duplicate_ticket_code",
    "incomplete_operation",
)

# The kinds that only the external provider's records can show (replay_mismatch needs only the
# history, but only HTTP answers under an Idempotency-Key can break it).
PROVIDER_KINDS: frozenset[str] = frozenset(
    {
        "double_capture",
        "capture_without_ticket",
        "money_unbalanced",
        "unresolved_payment",
        "replay_mismatch",
    }
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant, with the ids that break it."""

    kind: str
    detail: str
