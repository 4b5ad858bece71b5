"""The verdict on one race: every rule run over the indexed facts, plus headline counts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lastseat.lab.checker.answers import replay_mismatches, replays, unknown_resolved
from lastseat.lab.checker.claims import pool_held_mismatches, seat_hold_mismatches
from lastseat.lab.checker.facts import Facts, gather_facts
from lastseat.lab.checker.inventory import (
    oversold,
    pool_count_mismatches,
    pools_over_capacity,
    seat_state_mismatches,
    seats_sold_twice,
)
from lastseat.lab.checker.mixed import MIXED_KINDS, MIXED_RULES
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
from lastseat.lab.checker.payments import (
    capture_count,
    captures_without_ticket,
    confirmed_without_capture,
    double_captures,
    money_unbalanced,
    refund_count,
    unresolved_payments,
)
from lastseat.lab.checker.provider import ProviderBook, ProviderLedger, book_of
from lastseat.lab.checker.records import duplicate_ticket_codes, incomplete_operations
from lastseat.lab.checker.violations import KINDS, Violation
from lastseat.lab.history import Operation
from lastseat.service.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything wrong with one race, plus the headline counts a report prints."""

    violations: tuple[Violation, ...]
    tickets_sold: int
    oversold: int
    double_charges: int
    captures: int = 0  # captures at the external provider (a payment captured twice: 2)
    refunds: int = 0  # refunds at the external provider
    unknown_resolved: int = 0  # unknown or pending (202) answers whose order is final now
    replays: int = 0  # answers that carried Idempotent-Replayed: true

    @property
    def ok(self) -> bool:
        """True when no invariant is broken."""
        return not self.violations

    def kinds(self) -> set[str]:
        """The distinct kinds of violation found."""
        return {v.kind for v in self.violations}


def check(
    history: Iterable[Operation], snapshot: Snapshot, provider: ProviderLedger | None = None
) -> Verdict:
    """Every invariant violation in one race's history and final state, with headline counts.

    With `provider` (the external payment provider's records, read after the race) the rules
    for externally paid orders run too; without it the provider's side goes unchecked.
    """
    facts = gather_facts(tuple(history), snapshot)
    book = book_of(provider) if provider is not None else None
    found = [v for rule in _RULES for v in rule(facts)]
    if book is not None:
        found += [v for provider_rule in _PROVIDER_RULES for v in provider_rule(facts, book)]
    return Verdict(
        violations=tuple(sorted(found, key=lambda v: _RANK[v.kind])),
        tickets_sold=sum(len(tickets) for tickets in facts.valid_by_order.values()),
        oversold=oversold(facts),
        double_charges=extra_purchases(facts),
        captures=capture_count(book) if book is not None else 0,
        refunds=refund_count(book) if book is not None else 0,
        unknown_resolved=unknown_resolved(facts),
        replays=replays(facts),
    )


# Violations are reported grouped by the invariant they break, in KINDS order.
_RANK = {kind: rank for rank, kind in enumerate((*KINDS, *MIXED_KINDS))}

_RULES: tuple[Callable[[Facts], Iterable[Violation]], ...] = (
    seats_sold_twice,
    seat_state_mismatches,
    seat_hold_mismatches,
    pools_over_capacity,
    pool_count_mismatches,
    pool_held_mismatches,
    double_charges,
    charges_without_order,
    confirmed_without_charge,
    tickets_without_order,
    money_not_conserved,
    negative_balances,
    missing_tickets,
    failures_with_tickets,
    standing_charges,
    replay_mismatches,  # needs only the history: silent when no answer carries a key
    duplicate_ticket_codes,
    incomplete_operations,
    *MIXED_RULES,  # the answers of the mixed scenario's writes and reads
)

_PROVIDER_RULES: tuple[Callable[[Facts, ProviderBook], Iterable[Violation]], ...] = (
    double_captures,
    captures_without_ticket,
    confirmed_without_capture,
    money_unbalanced,
    unresolved_payments,
)
