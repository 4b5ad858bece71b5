"""The checker's inputs, a history and a snapshot, indexed once for every rule to read."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from lastseat.domain.tickets import TicketStatus
from lastseat.lab.history import Operation
from lastseat.service.snapshot import (
    HoldRow,
    OrderRow,
    PaymentRow,
    Snapshot,
    TicketRow,
    TransferRow,
)


@dataclass(frozen=True, slots=True)
class Facts:
    """The inputs, indexed once so every rule stays a short loop."""

    history: tuple[Operation, ...]
    attempts: tuple[Operation, ...]
    snapshot: Snapshot
    orders: Mapping[str, OrderRow]
    holds: Mapping[str, HoldRow]
    order_of_hold: Mapping[str, OrderRow]  # hold id -> the order made from it
    valid_by_order: Mapping[str, Sequence[TicketRow]]
    valid_by_seat: Mapping[str, Sequence[TicketRow]]
    valid_by_pool: Mapping[str, int]
    money_by_order: Mapping[tuple[str, str], Sequence[TransferRow]]  # (order_id, kind)
    payments: Mapping[str, PaymentRow]  # order id -> its payment at an external provider

    def paid_externally(self, order_id: str) -> bool:
        """True when the order's money went through an external provider, not the wallets."""
        return order_id in self.payments


def gather_facts(history: tuple[Operation, ...], snapshot: Snapshot) -> Facts:
    """Index one race's history and final state for the rules."""
    valid = [t for t in snapshot.tickets if t.status == TicketStatus.VALID]
    by_order: dict[str, list[TicketRow]] = defaultdict(list)
    by_seat: dict[str, list[TicketRow]] = defaultdict(list)
    for ticket in valid:
        by_order[ticket.order_id].append(ticket)
        if ticket.seat_id is not None:
            by_seat[ticket.seat_id].append(ticket)
    money: dict[tuple[str, str], list[TransferRow]] = defaultdict(list)
    for transfer in snapshot.transfers:
        if transfer.order_id is not None:
            money[(transfer.order_id, transfer.kind)].append(transfer)
    return Facts(
        history=history,
        attempts=_attempts(history),
        snapshot=snapshot,
        orders={o.order_id: o for o in snapshot.orders},
        holds={h.hold_id: h for h in snapshot.holds},
        order_of_hold={o.hold_id: o for o in snapshot.orders},
        valid_by_order=dict(by_order),
        valid_by_seat=dict(by_seat),
        valid_by_pool=Counter(t.pool_id for t in valid if t.pool_id is not None),
        money_by_order=dict(money),
        payments={p.order_id: p for p in snapshot.payments},
    )


def _attempts(history: tuple[Operation, ...]) -> tuple[Operation, ...]:
    """One line per op_id: its completion, or its bare invoke while it never completed."""
    invokes: dict[str, Operation] = {}
    completions: dict[str, Operation] = {}
    for op in history:
        (invokes if op.type == "invoke" else completions).setdefault(op.op_id, op)
    merged = []
    for op_id in dict.fromkeys(op.op_id for op in history):
        invoke, done = invokes.get(op_id), completions.get(op_id)
        if done is None or invoke is None:
            merged.append(done or invokes[op_id])
            continue
        # The invoke says what was tried; a completion may repeat it or carry only the outcome.
        merged.append(
            replace(
                done,
                action=invoke.action,
                seat_ids=done.seat_ids or invoke.seat_ids,
                pool_id=done.pool_id or invoke.pool_id,
                quantity=done.quantity or invoke.quantity,
                order_id=done.order_id or invoke.order_id,
                idempotency_key=done.idempotency_key or invoke.idempotency_key,
            )
        )
    return tuple(merged)
