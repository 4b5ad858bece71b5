"""Read the whole database into a storage-independent Snapshot for the checker."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from lastseat.service.snapshot import (
    AccountRow,
    EntryRow,
    HoldRow,
    OrderRow,
    PaymentRow,
    PoolRow,
    SeatRow,
    Snapshot,
    TicketRow,
    TransferRow,
)


def read_snapshot(conn: sqlite3.Connection) -> Snapshot:
    """Every table the invariants speak about (call inside one read transaction)."""
    q = conn.execute
    hold_seats: dict[str, list[str]] = defaultdict(list)
    for hold_id, seat_id in q("SELECT hold_id, seat_id FROM hold_seats ORDER BY seat_id"):
        hold_seats[hold_id].append(seat_id)
    return Snapshot(
        seats=tuple(
            SeatRow(*r)
            for r in q("SELECT seat_id, event_id, status, hold_id, price_minor FROM seats")
        ),
        pools=tuple(
            PoolRow(*r)
            for r in q("SELECT pool_id, event_id, capacity, held, sold, price_minor FROM pools")
        ),
        holds=tuple(
            HoldRow(r[0], r[1], r[2], tuple(hold_seats.get(r[0], ())), r[3], r[4], r[5])
            for r in q(
                "SELECT hold_id, buyer_id, status, pool_id, quantity, expires_at_us FROM holds"
            )
        ),
        orders=tuple(
            OrderRow(*r)
            for r in q(
                "SELECT order_id, buyer_id, hold_id, status, amount_minor, currency, quantity"
                " FROM orders"
            )
        ),
        tickets=tuple(
            TicketRow(*r)
            for r in q("SELECT ticket_id, order_id, seat_id, pool_id, code, status FROM tickets")
        ),
        accounts=tuple(
            AccountRow(*r)
            for r in q("SELECT account_id, kind, currency, balance_minor FROM accounts")
        ),
        transfers=tuple(
            TransferRow(*r)
            for r in q(
                "SELECT transfer_id, kind, source, destination, amount_minor, currency, order_id"
                " FROM transfers"
            )
        ),
        entries=tuple(
            EntryRow(*r)
            for r in q("SELECT transfer_id, account_id, amount_minor FROM ledger_entries")
        ),
        payments=tuple(
            PaymentRow(*r)
            for r in q(
                "SELECT order_id, payment_key, status, amount_minor, currency, payment_id,"
                " attempts FROM payments"
            )
        ),
    )
