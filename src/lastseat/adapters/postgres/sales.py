"""A claimed sale's writes and its COMMIT, sent to PostgreSQL in one flight (pipeline mode).

Design note. A claim's conditional UPDATE locks the hot row (the pool, or the seats) until
COMMIT, so every round trip between the claim and COMMIT is time every other buyer of that
row waits, and on a busy client each one also waits for its thread to be scheduled again::

    A: UPDATE pools ... (locks)  hold  revenue  wallet  transfer  entries  order  tickets  COMMIT
    B:          waits ......................................................................... runs

Sent one statement at a time, A holds the lock across ~10 round trips. Here the sale's
statements are queued in a pipeline that stays open, the store's COMMIT joins them, and all of
it travels together: A holds the lock for the claim's round trip, then one flight::

    A: UPDATE pools ... (locks)  [hold revenue pay order tickets COMMIT]
    B:          waits ............................................... runs

Nobody reads a row count between the debit and the COMMIT, so a wallet that cannot pay must
abort the transaction by itself: `lastseat_pay` (migration 0005) raises LS402/LS404/LS409 and
errors.translate() turns them into the buyer's reason. Statements in a flight are never
prepared: a statement after the one that aborts a flight is skipped by the server, its Parse
too, and psycopg would then believe in a prepared statement that does not exist ("prepared
statement _pg3_N does not exist" on the connection's next use). Accounts are written in account_id
order ("revenue:…" before "wallet:…", rule 2 of tx.py), so a sale and a refund between the same
accounts cannot deadlock.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lastseat.adapters.postgres import records
from lastseat.adapters.postgres.records import Conn
from lastseat.adapters.sqlite.records import to_us
from lastseat.domain.ledger import AccountKind
from lastseat.service.idempotency import RequestFence, StoredResponse
from lastseat.service.ports import Sale

_CREDIT = (
    "INSERT INTO accounts (account_id, kind, currency, balance_minor) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (account_id) DO UPDATE"
    " SET balance_minor = accounts.balance_minor + excluded.balance_minor"
)
_PAY = "SELECT lastseat_pay(%s, %s, %s, %s, %s, %s, %s)"
# Every ticket of the sale in one statement (executemany would prepare it).
_TICKET_FIELDS = ("ticket_id", "order_id", "event_id", "seat_id", "pool_id", "code")
_TICKETS = (
    "INSERT INTO tickets (ticket_id, order_id, event_id, seat_id, pool_id, code)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
)


def send_sale(conn: Conn, sale: Sale) -> None:
    """Queue the sale's rows on `conn`, which must be in pipeline mode: nothing waits for an
    answer, so they go to the server with whatever is sent next (the COMMIT)."""
    transfer = sale.transfer
    amount = transfer.amount
    if sale.new_hold is not None:
        records.send_hold(conn, sale.new_hold)
    conn.execute(
        _CREDIT,
        (transfer.destination, AccountKind.REVENUE.value, amount.currency, amount.amount_minor),
        prepare=False,
    )
    conn.execute(
        _PAY,
        (
            transfer.transfer_id,
            transfer.kind.value,
            transfer.source,
            transfer.destination,
            amount.amount_minor,
            amount.currency,
            transfer.order_id,
        ),
        prepare=False,
    )
    records.insert_order(conn, sale.order, prepare=False)
    tickets = sale.tickets
    conn.execute(
        _TICKETS, [[getattr(t, f) for t in tickets] for f in _TICKET_FIELDS], prepare=False
    )


# The request's answer, stored only by the attempt that still owns the request; an attempt
# that is over aborts the transaction (LS410 -> FencedOutError) when it ends.
_ANSWER = (
    "WITH answered AS (UPDATE idempotency_keys"
    " SET status = %s, headers = %s, body = %s, finished_at_us = %s"
    " WHERE record_id = %s AND attempt = %s AND status IS NULL RETURNING 1)"
    " SELECT lastseat_require(count(*) = 1, 'LS410', %s) FROM answered"
)


def send_answer(conn: Conn, fence: RequestFence, response: StoredResponse, now: datetime) -> None:
    """Queue the request's stored answer behind the sale (`conn` in pipeline mode)."""
    conn.execute(
        _ANSWER,
        (
            response.status,
            json.dumps(response.headers),
            response.body,
            to_us(now),
            fence.record_id,
            fence.attempt,
            f"request {fence.record_id} attempt {fence.attempt} is over",
        ),
        prepare=False,
    )


def send_claim(conn: Conn, update: str, params: dict[str, Any], rows: int) -> None:
    """Queue a claim's conditional UPDATE so that changing fewer than `rows` rows (its seats,
    or the one pool row) aborts the transaction (LSCLM -> InventoryTakenError)."""
    conn.execute(
        f"WITH taken AS ({update} RETURNING 1)"
        " SELECT lastseat_require(count(*) = %(rows)s, 'LSCLM', 'the inventory is taken')"
        " FROM taken",
        {**params, "rows": rows},
        prepare=False,
    )
