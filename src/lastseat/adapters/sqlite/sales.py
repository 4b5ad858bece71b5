"""A claimed sale's writes on SQLite: the same rows as PostgreSQL's pipeline, in one go.

SQLite runs in-process (no round trips) and one writer holds the whole database, so the only
gain here is writing no row the sale does not need: the debit is one conditional statement
(no balance read first), the revenue credit opens its account if need be.
"""

from __future__ import annotations

import sqlite3

from lastseat.adapters.sqlite import records
from lastseat.domain.ledger import AccountKind, refused_debit
from lastseat.service.ports import Sale

_DEBIT = (
    "UPDATE accounts SET balance_minor = balance_minor - ?"
    " WHERE account_id = ? AND currency = ? AND balance_minor >= ?"
)
_CREDIT = (
    "INSERT INTO accounts (account_id, kind, currency, balance_minor) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (account_id) DO UPDATE SET balance_minor = balance_minor + excluded.balance_minor"
)


def record_sale(conn: sqlite3.Connection, sale: Sale) -> None:
    """Store the sale's money rows, order and tickets; raise why if the wallet cannot pay.

    The caller stores a new hold first (its fence comes from the holds table)."""
    transfer = sale.transfer
    amount = transfer.amount
    n = amount.amount_minor
    if conn.execute(_DEBIT, (n, transfer.source, amount.currency, n)).rowcount != 1:
        row = conn.execute(
            "SELECT currency FROM accounts WHERE account_id = ?", (transfer.source,)
        ).fetchone()
        raise refused_debit(transfer.source, amount, row[0] if row else None)
    conn.execute(_CREDIT, (transfer.destination, AccountKind.REVENUE.value, amount.currency, n))
    records.insert_transfer(conn, transfer)
    records.insert_order(conn, sale.order)
    records.insert_tickets(conn, sale.tickets)
