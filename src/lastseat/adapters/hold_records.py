"""Hold, order, ticket and account records whose SQL is the same on SQLite and PostgreSQL.

The claim primitives differ per store (row locks and re-checks on PostgreSQL, one writer on
SQLite), so they stay in each store's transaction; these plain records are written once.
Every status change is conditional (`WHERE status = :old`): concurrent sweepers, payers or
reconcilers racing for one hold or order elect exactly one winner by its rowcount.
"""

from __future__ import annotations

from datetime import datetime

from lastseat.adapters.dialect import Dialect
from lastseat.adapters.sqlite.records import to_us
from lastseat.domain.errors import ConflictError
from lastseat.domain.holds import Hold, HoldStatus, SeatClaim
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.service.ports import Stage

POOL_COLUMN = {Stage.HELD: "held", Stage.SOLD: "sold"}


class HoldRecordsSql(Dialect):
    """Mixin of both transactions: holds, orders, tickets and balances."""

    def get_hold(self, hold_id: str) -> Hold | None:
        """A hold with its claim, or None (each store reads its own hold tables)."""
        raise NotImplementedError

    def move_hold(self, hold_id: str, old: HoldStatus, new: HoldStatus) -> bool:
        """Conditional status change; False if someone else moved it first."""
        return self._changed(
            "UPDATE holds SET status = ? WHERE hold_id = ? AND status = ?",
            (new.value, hold_id, old.value),
        )

    def lapsed_hold_ids(self, now: datetime, limit: int) -> list[str]:
        """Active holds past their expiry, oldest first; ones another sweeper holds are skipped."""
        rows = self._run(
            "SELECT hold_id FROM holds WHERE status = 'active' AND expires_at_us <= ?"
            " ORDER BY expires_at_us LIMIT ?" + self._SKIP_LOCKED,
            (to_us(now), limit),
        ).fetchall()
        return [r[0] for r in rows]

    def sell_held(self, hold: Hold) -> None:
        """Turn the hold's held inventory into sold inventory."""
        claim = hold.claim
        if isinstance(claim, SeatClaim):
            changed = self._run(
                "UPDATE seats SET status = 'sold', version = version + 1"
                " WHERE hold_id = ? AND status = 'held'",
                (hold.hold_id,),
            ).rowcount
            if changed != claim.quantity:
                raise ConflictError(f"hold {hold.hold_id} no longer owns all its seats")
            return
        self._run(
            "UPDATE pools SET held = held - ?, sold = sold + ?, version = version + 1"
            " WHERE pool_id = ?",
            (claim.quantity, claim.quantity, claim.pool_id),
        )

    def release_inventory(self, hold: Hold, stage: Stage) -> None:
        """Give the hold's held or sold inventory back."""
        claim = hold.claim
        if isinstance(claim, SeatClaim):
            self._run(
                "UPDATE seats SET status = 'available', hold_id = NULL, version = version + 1"
                " WHERE hold_id = ? AND status = ?",
                (hold.hold_id, stage.value),
            )
            return
        column = POOL_COLUMN[stage]
        self._run(
            f"UPDATE pools SET {column} = {column} - ?, version = version + 1 WHERE pool_id = ?",
            (claim.quantity, claim.pool_id),
        )

    def expire_hold(self, hold_id: str) -> bool:
        """Expire an active hold and give its inventory back; False if it was not active."""
        # Many sweepers may race here: the conditional status change (re-checked after a lock
        # wait on PostgreSQL) elects exactly one of them to give the inventory back.
        if not self.move_hold(hold_id, HoldStatus.ACTIVE, HoldStatus.EXPIRED):
            return False
        hold = self.get_hold(hold_id)
        if hold is not None:
            self.release_inventory(hold, Stage.HELD)
        return True

    def move_order(self, order_id: str, old: OrderStatus, new: OrderStatus) -> bool:
        """Conditional status change; False if someone else moved it first."""
        return self._changed(
            "UPDATE orders SET status = ? WHERE order_id = ? AND status = ?",
            (new.value, order_id, old.value),
        )

    def void_tickets(self, order_id: str) -> int:
        """Void an order's valid tickets; return how many."""
        return int(
            self._run(
                "UPDATE tickets SET status = 'void' WHERE order_id = ? AND status = 'valid'",
                (order_id,),
            ).rowcount
        )

    def balance(self, account_id: str) -> Money | None:
        """An account's balance, or None if there is no such account."""
        row = self._run(
            "SELECT balance_minor, currency FROM accounts WHERE account_id = ?", (account_id,)
        ).fetchone()
        return Money(row[0], row[1]) if row else None

    def event_currency(self, event_id: str) -> str | None:
        """The currency an event sells in, or None if there is no such event."""
        row = self._run("SELECT currency FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return str(row[0]) if row else None

    def _changed(self, statement: str, params: tuple[object, ...]) -> bool:
        return bool(self._run(statement, params).rowcount == 1)
