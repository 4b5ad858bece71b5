"""Payments and refunds: the card processor's rules, run inside the store's write transaction.

Every function here takes the connection of an open BEGIN IMMEDIATE transaction, so its
read-check-write cannot interleave with another writer's. In particular two refunds of one
payment cannot both pass the "refunded + amount <= captured" check and together exceed it::

    A: SELECT refunded_minor -> 0      B: SELECT refunded_minor -> 0
    A: UPDATE refunded_minor = 80      B: UPDATE refunded_minor = 80     # 160 of 100 refunded

(and the CHECK constraint on `refunded_minor` would refuse it anyway).
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from lastseat.provider.problems import ProblemError

PAYMENT_COLUMNS = (
    "seq, payment_id, idempotency_key, customer, amount_minor, currency, status, decline_code,"
    " refunded_minor, captures, created"
)
REFUND_COLUMNS = "seq, refund_id, idempotency_key, payment_id, amount_minor, currency, created"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def payment_document(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    """The JSON object of a payment row (selected with PAYMENT_COLUMNS)."""
    seq, payment_id, key, customer, amount, currency, status, code, refunded, captures, created = (
        row
    )
    return {
        "object": "payment",
        "seq": seq,
        "id": payment_id,
        "idempotency_key": key,
        "customer": customer,
        "amount_minor": amount,
        "currency": currency,
        "status": status,
        "decline_code": code,
        "refunded_minor": refunded,
        "captures": captures,
        "created": created,
    }


def refund_document(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    """The JSON object of a refund row (selected with REFUND_COLUMNS)."""
    seq, refund_id, key, payment_id, amount, currency, created = row
    return {
        "object": "refund",
        "seq": seq,
        "id": refund_id,
        "idempotency_key": key,
        "payment_id": payment_id,
        "amount_minor": amount,
        "currency": currency,
        "created": created,
    }


def create_payment(
    conn: sqlite3.Connection,
    key: str,
    customer: str,
    amount_minor: int,
    currency: str,
    *,
    capture: bool,
    decline_code: str | None,
) -> tuple[int, dict[str, Any]]:
    """Authorize (and capture) a new payment, or record its decline: 201, or 402 when declined."""
    payment_id = "pay_" + secrets.token_hex(12)
    if decline_code is not None:
        status, captures = "declined", 0
    else:
        status, captures = ("captured", 1) if capture else ("authorized", 0)
    conn.execute(
        "INSERT INTO payments (payment_id, idempotency_key, customer, amount_minor, currency,"
        f" status, decline_code, captures, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {_NOW})",
        (payment_id, key, customer, amount_minor, currency, status, decline_code, captures),
    )
    document = get_payment(conn, payment_id)
    if decline_code is not None:
        return 402, {**document, "payment_id": payment_id}
    return 201, document


def capture_payment(conn: sqlite3.Connection, payment_id: str) -> tuple[int, dict[str, Any]]:
    """Capture an authorized payment: 200; anything else is a 409 problem."""
    payment = get_payment(conn, payment_id)
    if payment["status"] != "authorized":
        raise ProblemError(
            409, "invalid-state", f"payment {payment_id} is {payment['status']}, not authorized"
        )
    conn.execute(
        "UPDATE payments SET status = 'captured', captures = captures + 1 WHERE payment_id = ?",
        (payment_id,),
    )
    return 200, get_payment(conn, payment_id)


def refund_payment(
    conn: sqlite3.Connection, key: str, payment_id: str, amount_minor: int
) -> tuple[int, dict[str, Any]]:
    """Give back part or all of a captured payment: 201; never more than was captured."""
    payment = get_payment(conn, payment_id)
    if payment["status"] != "captured":
        raise ProblemError(
            409, "invalid-state", f"payment {payment_id} is {payment['status']}, not captured"
        )
    left = payment["amount_minor"] - payment["refunded_minor"]
    if amount_minor > left:
        raise ProblemError(
            409,
            "refund-exceeds-capture",
            f"only {left} of payment {payment_id} is left to refund, asked for {amount_minor}",
        )
    refund_id = "re_" + secrets.token_hex(12)
    conn.execute(
        "UPDATE payments SET refunded_minor = refunded_minor + ? WHERE payment_id = ?",
        (amount_minor, payment_id),
    )
    conn.execute(
        "INSERT INTO refunds (refund_id, idempotency_key, payment_id, amount_minor, currency,"
        f" created) VALUES (?, ?, ?, ?, ?, {_NOW})",
        (refund_id, key, payment_id, amount_minor, payment["currency"]),
    )
    row = conn.execute(
        f"SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_id = ?", (refund_id,)
    ).fetchone()
    return 201, refund_document(row)


def get_payment(conn: sqlite3.Connection, payment_id: str) -> dict[str, Any]:
    """One payment, or a 404 problem."""
    row = conn.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = ?", (payment_id,)
    ).fetchone()
    if row is None:
        raise ProblemError(404, "not-found", f"no payment {payment_id}")
    return payment_document(row)


def payment_by_key(conn: sqlite3.Connection, key: str) -> dict[str, Any]:
    """The payment a `POST /v1/payments` with this Idempotency-Key made, or a 404 problem."""
    row = conn.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE idempotency_key = ? ORDER BY seq LIMIT 1",
        (key,),
    ).fetchone()
    if row is None:
        raise ProblemError(404, "not-found", "no payment was made with this idempotency key")
    return payment_document(row)


def list_payments(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    """Payments with `seq > after`, oldest first."""
    rows = conn.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    return [payment_document(row) for row in rows]


def list_refunds(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    """Refunds with `seq > after`, oldest first."""
    rows = conn.execute(
        f"SELECT {REFUND_COLUMNS} FROM refunds WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    return [refund_document(row) for row in rows]
