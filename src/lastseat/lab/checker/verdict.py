"""The verdict on one race: every rule run over the indexed facts, plus headline counts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lastseat.lab.checker.facts import Facts, gather_facts
from lastseat.lab.checker.inventory import (
    oversold,
    pool_count_mismatches,
    pools_over_capacity,
    seat_state_mismatches,
    seats_sold_twice,
)
from lastseat.lab.checker.money import (
    charges_without_order,
    confirmed_without_charge,
    double_charges,
    extra_purchases,
    money_not_conserved,
    negative_balances,
    tickets_without_order,
)
from lastseat.lab.checker.outcomes import (
    failures_with_tickets,
    missing_tickets,
    standing_charges,
)
from lastseat.lab.checker.records import duplicate_ticket_codes, incomplete_operations
from lastseat.lab.checker.violations import Violation
from lastseat.lab.history import Operation
from lastseat.service.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything wrong with one race, plus the headline counts a report prints."""

    violations: tuple[Violation, ...]
    tickets_sold: int
    oversold: int
    double_charges: int

    @property
    def ok(self) -> bool:
        """True when no invariant is broken."""
        return not self.violations

    def kinds(self) -> set[str]:
        """The distinct kinds of violation found."""
        return {v.kind for v in self.violations}


def check(history: Iterable[Operation], snapshot: Snapshot) -> Verdict:
    """Every invariant violation in one race's history and final state, with headline counts."""
    facts = gather_facts(tuple(history), snapshot)
    violations = tuple(v for rule in _RULES for v in rule(facts))
    return Verdict(
        violations=violations,
        tickets_sold=sum(len(tickets) for tickets in facts.valid_by_order.values()),
        oversold=oversold(facts),
        double_charges=extra_purchases(facts),
    )


# In KINDS order, so violations are reported grouped by the invariant they break.
_RULES: tuple[Callable[[Facts], Iterable[Violation]], ...] = (
    seats_sold_twice,
    seat_state_mismatches,
    pools_over_capacity,
    pool_count_mismatches,
    double_charges,
    charges_without_order,
    confirmed_without_charge,
    tickets_without_order,
    money_not_conserved,
    negative_balances,
    missing_tickets,
    failures_with_tickets,
    standing_charges,
    duplicate_ticket_codes,
    incomplete_operations,
)
