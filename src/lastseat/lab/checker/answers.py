"""Rules for the answers buyers got over HTTP: unknowns resolved, replays identical (inv. 5).

An answer is *unknown* when the client never learned the outcome (`info`) or was told only
"accepted, pending" (HTTP 202). Its order is the one it named, else the one another answer
under the same Idempotency-Key named. A *stored final* answer is one the server must replay
unchanged for its key: any status below 500 except a 202 and a transient 409
(request-in-progress, conflict).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from lastseat.domain.orders import OrderStatus
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.violations import Violation
from lastseat.lab.history import Operation

PENDING_STATUS = 202
_TRANSIENT_409 = frozenset({"requestinprogress", "conflict"})


def completions(facts: Facts) -> tuple[Operation, ...]:
    """Every attempt that completed (ok, fail or info), with its invoke's fields merged in."""
    return tuple(op for op in facts.attempts if op.type != "invoke")


def unknown_outcomes(facts: Facts) -> Iterator[tuple[Operation, str | None]]:
    """Each unknown or pending answer, with the order it (or its key) names, if any."""
    named: dict[str, str] = {}
    for op in completions(facts):
        if op.idempotency_key is not None and op.order_id is not None:
            named.setdefault(op.idempotency_key, op.order_id)
    for op in completions(facts):
        if op.type == "info" or op.status == PENDING_STATUS:
            yield op, op.order_id or named.get(op.idempotency_key or "")


def unknown_resolved(facts: Facts) -> int:
    """Unknown or pending answers whose order exists and is final now."""
    return sum(
        1
        for _, order_id in unknown_outcomes(facts)
        if order_id is not None and _final(facts, order_id)
    )


def unresolved_operations(facts: Facts) -> Iterator[Violation]:
    """Unknown or pending answers whose order is missing or still not final."""
    for op, order_id in unknown_outcomes(facts):
        if order_id is None or _final(facts, order_id):
            continue
        order = facts.orders.get(order_id)
        state = order.status if order is not None else "missing"
        yield Violation(
            "unresolved_payment",
            f"op {op.op_id} of {op.buyer_id} was left {_told(op)}, and order {order_id} is {state}",
        )


def _final(facts: Facts, order_id: str) -> bool:
    order = facts.orders.get(order_id)
    return order is not None and order.status != OrderStatus.PENDING_PAYMENT


def _told(op: Operation) -> str:
    return "pending (202)" if op.status == PENDING_STATUS else "unknown"


def replays(facts: Facts) -> int:
    """Answers that carried Idempotent-Replayed: true."""
    return sum(1 for op in completions(facts) if op.replayed)


def replay_mismatches(facts: Facts) -> Iterator[Violation]:
    """Idempotency keys whose stored final answers differ in status or body."""
    answers: dict[str, list[Operation]] = defaultdict(list)
    for op in completions(facts):
        if op.idempotency_key is not None and stored_final(op):
            answers[op.idempotency_key].append(op)
    for key, ops in sorted(answers.items()):
        if len({(op.status, op.digest) for op in ops}) > 1:
            told = ", ".join(f"{op.op_id}={op.status}/{(op.digest or '-')[:12]}" for op in ops)
            yield Violation("replay_mismatch", f"key {key} was answered differently: {told}")


def stored_final(op: Operation) -> bool:
    """True for an answer the server must replay unchanged for its key."""
    if op.status is None or op.status == PENDING_STATUS or op.status >= 500:
        return False
    return not (op.status == 409 and _slug(op.error) in _TRANSIENT_409)


def _slug(error: str | None) -> str:
    """`request_in_progress`, `request-in-progress` or `RequestInProgressError` alike."""
    letters = "".join(ch for ch in (error or "").lower() if ch.isalnum())
    return letters.removesuffix("error")
