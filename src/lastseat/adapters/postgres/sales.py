"""A claimed sale's writes, sent to PostgreSQL in one round trip (psycopg pipeline mode).

Design note. A claim's conditional UPDATE locks the hot row (the pool, or the seats) until
COMMIT, so every round trip between the claim and COMMIT is time every other buyer of that
row waits::

    A: UPDATE pools ... (locks)  hold  revenue  wallet  transfer  entries  order  tickets  COMMIT
    B:          waits ......................................................................... runs

Sent one statement at a time, A holds the lock across ~8 round trips; in a pipeline the same
statements travel together and A holds it across one, then the COMMIT::

    A: UPDATE pools ... (locks)  [hold revenue wallet transfer entries order tickets]  COMMIT
    B:          waits ....................................................................... runs

The wallet debit is conditional (`balance_minor >= amount`), so it needs no read first: a
debit that changes no row means the wallet cannot pay, and the caller rolls everything back.
Accounts are still written in account_id order ("revenue:…" before "wallet:…", rule 2 of
tx.py), so a sale and a refund between the same accounts cannot deadlock.
"""

from __future__ import annotations

from lastseat.adapters.postgres import records
from lastseat.adapters.postgres.errors import translated
from lastseat.adapters.postgres.records import NOW_US, Conn
from lastseat.domain.ledger import AccountKind
from lastseat.service.ports import Sale

_CREDIT = (
    "INSERT INTO accounts (account_id, kind, currency, balance_minor) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (account_id) DO UPDATE"
    " SET balance_minor = accounts.balance_minor + excluded.balance_minor"
)
# The debit, the transfer and its two entries in one statement: the transfer is inserted only
# from the debited row, so a wallet that cannot pay (or does not exist) leaves no transfer
# behind to trip a foreign key; the statement's row count (2 entries or none) says which.
_PAY = (
    "WITH debit AS ("
    "  UPDATE accounts SET balance_minor = balance_minor - %(n)s"
    "  WHERE account_id = %(src)s AND currency = %(currency)s AND balance_minor >= %(n)s"
    "  RETURNING account_id),"
    " transfer AS ("
    "  INSERT INTO transfers (transfer_id, kind, source, destination, amount_minor, currency,"
    "   order_id, created_at_us)"
    "  SELECT %(id)s, %(kind)s, %(src)s, %(dst)s, %(n)s, %(currency)s, %(order)s,"
    f"  {NOW_US} FROM debit RETURNING transfer_id)"
    " INSERT INTO ledger_entries (transfer_id, account_id, amount_minor)"
    " SELECT t.transfer_id, e.account_id, e.amount_minor FROM transfer t,"
    "  (VALUES (%(src)s, -%(n)s::bigint), (%(dst)s, %(n)s::bigint)) AS e (account_id, amount_minor)"
)


def record_sale(conn: Conn, sale: Sale) -> bool:
    """Store the sale's rows in one round trip; False if the wallet could not pay."""
    transfer = sale.transfer
    amount = transfer.amount
    with translated(), conn.pipeline():
        if sale.new_hold is not None:
            records.send_hold(conn, sale.new_hold)
        conn.execute(
            _CREDIT,
            (transfer.destination, AccountKind.REVENUE.value, amount.currency, amount.amount_minor),
        )
        paid = conn.execute(
            _PAY,
            {
                "n": amount.amount_minor,
                "src": transfer.source,
                "dst": transfer.destination,
                "currency": amount.currency,
                "id": transfer.transfer_id,
                "kind": transfer.kind.value,
                "order": transfer.order_id,
            },
        )
        records.insert_order(conn, sale.order)
        records.insert_tickets(conn, sale.tickets)
    return paid.rowcount == 2
