"""Payment rows, shared by the SQLite and PostgreSQL transactions.

The two schemas have the same `payments` table and both drivers run DB-API style
`conn.execute(sql, params)`; only the parameter mark differs (`?` or `%s`), so one mixin
serves both instead of two copies of the same SQL.
"""

from __future__ import annotations

from datetime import datetime

from lastseat.adapters.dialect import Dialect
from lastseat.adapters.sqlite.records import from_us, to_us
from lastseat.domain.money import Money
from lastseat.domain.payments import UNSETTLED, Payment, PaymentStatus

_COLUMNS = (
    "order_id, provider, payment_key, status, amount_minor, currency, payment_id, attempts,"
    " lease_until_us"
)


class PaymentRecords(Dialect):
    """Mixin of both transactions: the payments table."""

    def insert_payment(self, payment: Payment, now: datetime) -> None:
        """Store an order's new payment row."""
        self._run(
            (
                f"INSERT INTO payments ({_COLUMNS}, updated_at_us)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                payment.order_id,
                payment.provider,
                payment.payment_key,
                payment.status.value,
                payment.amount.amount_minor,
                payment.amount.currency,
                payment.payment_id,
                payment.attempts,
                to_us(payment.lease_until),
                to_us(now),
            ),
        )

    def get_payment(self, order_id: str) -> Payment | None:
        """An order's payment row, or None for orders paid from the wallet."""
        row = self._run(
            (f"SELECT {_COLUMNS} FROM payments WHERE order_id = ?"), (order_id,)
        ).fetchone()
        if row is None:
            return None
        return Payment(
            row[0],
            row[1],
            row[2],
            PaymentStatus(row[3]),
            Money(row[4], row[5]),
            row[6],
            row[7],
            from_us(row[8]),
        )

    def move_payment(
        self,
        order_id: str,
        old: PaymentStatus,
        new: PaymentStatus,
        now: datetime,
        payment_id: str | None = None,
    ) -> bool:
        """Conditional status change (recording the provider's id if given); False if another
        driver moved it first."""
        cursor = self._run(
            (
                "UPDATE payments SET status = ?, payment_id = COALESCE(?, payment_id),"
                " updated_at_us = ? WHERE order_id = ? AND status = ?"
            ),
            (new.value, payment_id, to_us(now), order_id, old.value),
        )
        return bool(cursor.rowcount == 1)

    def lease_payment(self, order_id: str, now: datetime, until: datetime) -> bool:
        """Become the payment's one driver until `until`, if nobody's lease is running; counts
        the attempt. False: another request or reconciler is driving it right now."""
        cursor = self._run(
            (
                "UPDATE payments SET lease_until_us = ?, attempts = attempts + 1,"
                " updated_at_us = ? WHERE order_id = ? AND lease_until_us <= ?"
                " AND status IN (?, ?)"
            ),
            (to_us(until), to_us(now), order_id, to_us(now), *(s.value for s in UNSETTLED)),
        )
        return bool(cursor.rowcount == 1)

    def unsettled_payments(self, now: datetime, limit: int) -> list[str]:
        """Orders whose payment is unsettled and not being driven (lease over), oldest first."""
        rows = self._run(
            (
                "SELECT order_id FROM payments WHERE status IN (?, ?) AND lease_until_us <= ?"
                " ORDER BY lease_until_us LIMIT ?"
            ),
            (*(s.value for s in UNSETTLED), to_us(now), limit),
        ).fetchall()
        return [r[0] for r in rows]

    def set_payment_lease(self, order_id: str, until: datetime) -> None:
        """Hand the payment on: nobody drives it before `until` (then a reconciler may)."""
        self._run(
            "UPDATE payments SET lease_until_us = ? WHERE order_id = ?", (to_us(until), order_id)
        )

    def order_of_hold(self, hold_id: str) -> str | None:
        """The order made from a hold, if any (at most one: orders.hold_id is unique)."""
        row = self._run("SELECT order_id FROM orders WHERE hold_id = ?", (hold_id,)).fetchone()
        return None if row is None else str(row[0])

    def transfer_parties(self, transfer_id: str) -> tuple[str, str] | None:
        """A ledger transfer's (source, destination), or None if it was never posted."""
        row = self._run(
            "SELECT source, destination FROM transfers WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))
