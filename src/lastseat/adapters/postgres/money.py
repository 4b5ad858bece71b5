"""Wallet transfers on PostgreSQL: both accounts locked in id order, then checked and moved."""

from __future__ import annotations

from lastseat.adapters.postgres import records
from lastseat.adapters.postgres.records import Conn
from lastseat.domain.ledger import AccountKind, Transfer, missing_account, short_of


def post_transfer(conn: Conn, transfer: Transfer) -> None:
    """Debit, credit and record a transfer; never leaves a balance negative.

    Both accounts are locked first, in account_id order (rule 2 of tx.py), so a purchase and a
    refund between the same two accounts cannot deadlock; the checks then read balances
    no one else can change before this transaction ends.
    """
    source, destination = transfer.source, transfer.destination
    amount = transfer.amount
    rows = conn.execute(
        "SELECT account_id, kind, currency, balance_minor FROM accounts"
        " WHERE account_id = ANY(%s) ORDER BY account_id FOR UPDATE",
        ([source, destination],),
    ).fetchall()
    found = {r[0]: r for r in rows if r[2] == amount.currency}
    for account_id in (source, destination):
        if account_id not in found:
            raise missing_account(account_id, amount.currency)
    _, kind, _, balance_minor = found[source]
    if kind != AccountKind.WORLD.value and balance_minor < amount.amount_minor:
        raise short_of(source, amount)
    conn.execute(
        "UPDATE accounts SET balance_minor = balance_minor"
        " + CASE WHEN account_id = %(src)s THEN -%(n)s ELSE %(n)s END"
        " WHERE account_id IN (%(src)s, %(dst)s)",
        {"src": source, "dst": destination, "n": amount.amount_minor},
    )
    records.insert_transfer(conn, transfer)
