"""Rules for the records the other checks rely on: unique ticket codes, whole operations."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.violations import Violation


def duplicate_ticket_codes(facts: Facts) -> Iterator[Violation]:
    """Tickets that share one code."""
    holders: dict[str, list[str]] = defaultdict(list)
    for ticket in facts.snapshot.tickets:
        holders[ticket.code].append(ticket.ticket_id)
    for code, ticket_ids in sorted(holders.items()):
        if len(ticket_ids) > 1:
            yield Violation(
                "duplicate_ticket_code",
                f"tickets {', '.join(sorted(ticket_ids))} share code {code}",
            )


def incomplete_operations(facts: Facts) -> Iterator[Violation]:
    """Op ids without exactly one invoke and one completion."""
    invokes = Counter(op.op_id for op in facts.history if op.type == "invoke")
    completions = Counter(op.op_id for op in facts.history if op.type != "invoke")
    for op_id in dict.fromkeys(op.op_id for op in facts.history):
        if invokes[op_id] != 1 or completions[op_id] != 1:
            yield Violation(
                "incomplete_operation",
                f"op {op_id} has {invokes[op_id]} invokes and {completions[op_id]} completions",
            )
