"""One SQLite transaction: the claim primitives the strategies compose, and plain records.

Nothing here decides *whether* a claim is safe; strategies do, by which primitive they call.
`write_seats` and `write_pool` are unguarded on purpose (used by `naive`, or by `row-lock`
once it holds the lock).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from lastseat.adapters.hold_records import POOL_COLUMN, HoldRecordsSql
from lastseat.adapters.idempotency_records import IdempotencyRecordsSql
from lastseat.adapters.payment_records import PaymentRecords
from lastseat.adapters.sqlite import records, sales
from lastseat.adapters.sqlite.errors import translate, translated
from lastseat.adapters.sqlite.records import to_us
from lastseat.domain.errors import (
    FencedOutError,
    InventoryTakenError,
)
from lastseat.domain.holds import (
    Claim,
    ClaimRequest,
    Hold,
    PoolClaim,
    SeatClaim,
    SectionClaim,
)
from lastseat.domain.inventory import Event
from lastseat.domain.ledger import AccountKind, Transfer, missing_account, short_of
from lastseat.domain.money import Money
from lastseat.domain.orders import Order
from lastseat.domain.tickets import Ticket
from lastseat.service.ports import Availability, PoolState, Sale, SeatState, Stage


def marks(count: int) -> str:
    """`?, ?, ?` for an IN list."""
    return ", ".join("?" * count)


class SqliteTx(HoldRecordsSql, IdempotencyRecordsSql, PaymentRecords):
    """An open transaction on one connection; the store commits or rolls it back."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._savepoints = itertools.count(1)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A step inside the transaction: if the block raises, only its writes are undone."""
        name = f"step_{next(self._savepoints)}"
        with translated():
            self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException as exc:
            with translated():
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
            if isinstance(exc, sqlite3.Error):
                raise translate(exc) from exc
            raise
        with translated():
            self._conn.execute(f"RELEASE {name}")

    # -- checks ---------------------------------------------------------------------------

    def read_seats(self, seat_ids: Sequence[str], now: datetime) -> list[SeatState]:
        """Seats in the given order, a seat held by a lapsed hold reading as available."""
        rows = self._conn.execute(
            "SELECT s.seat_id, s.status, s.version, h.status, h.expires_at_us"
            " FROM seats s LEFT JOIN holds h ON h.hold_id = s.hold_id"
            f" WHERE s.seat_id IN ({marks(len(seat_ids))})",
            tuple(seat_ids),
        ).fetchall()
        now_us = to_us(now)
        found = {r[0]: SeatState(r[0], _effective(r[1], r[3], r[4], now_us), r[2]) for r in rows}
        return [found[s] for s in seat_ids if s in found]

    def read_pool(self, pool_id: str, now: datetime) -> PoolState | None:
        """A pool's counters, units of lapsed holds counted as free."""
        row = self._conn.execute(
            "SELECT capacity, held, sold, version FROM pools WHERE pool_id = ?", (pool_id,)
        ).fetchone()
        if row is None:
            return None
        lapsed = self._lapsed_pool_units(pool_id, to_us(now))
        return PoolState(pool_id, row[0], row[1] - lapsed, row[2], row[3])

    def missing_inventory(self, claim: ClaimRequest) -> list[str]:
        """Ids the claim names that do not exist in its event."""
        if isinstance(claim, SectionClaim):
            row = self._conn.execute(
                "SELECT 1 FROM seats WHERE event_id = ? AND section = ? LIMIT 1",
                (claim.event_id, claim.section),
            ).fetchone()
            return [] if row else [claim.section]
        if isinstance(claim, PoolClaim):
            row = self._conn.execute(
                "SELECT 1 FROM pools WHERE pool_id = ? AND event_id = ?",
                (claim.pool_id, claim.event_id),
            ).fetchone()
            return [] if row else [claim.pool_id]
        rows = self._conn.execute(
            f"SELECT seat_id FROM seats WHERE event_id = ? AND seat_id IN"
            f" ({marks(claim.quantity)})",
            (claim.event_id, *claim.seat_ids),
        ).fetchall()
        present = {r[0] for r in rows}
        return [s for s in claim.seat_ids if s not in present]

    def free_seats(self, claim: SectionClaim, now: datetime, start: float) -> list[str]:
        """Up to `claim.quantity` free seats of the section from `start` on, ascending."""
        return self._free_in_section(claim, to_us(now), start)

    def _free_in_section(self, claim: SectionClaim, now_us: int, start: float) -> list[str]:
        if not 0 <= start < 1:
            raise ValueError(f"start must be in [0, 1), not {start}")
        rows = self._conn.execute(
            "SELECT s.seat_id, s.status, h.status, h.expires_at_us"
            " FROM seats s LEFT JOIN holds h ON h.hold_id = s.hold_id"
            " WHERE s.event_id = ? AND s.section = ? ORDER BY s.seat_id",
            (claim.event_id, claim.section),
        ).fetchall()
        pivot = int(start * len(rows))
        rotated = rows[pivot:] + rows[:pivot]
        free = [r[0] for r in rotated if _effective(r[1], r[2], r[3], now_us) == "available"]
        return sorted(free[: claim.quantity])

    # -- claim primitives -----------------------------------------------------------------

    def release_lapsed_holds(self, claim: ClaimRequest, now: datetime) -> int:
        """Expire the lapsed holds that sit on this claim's inventory; return how many."""
        now_us = to_us(now)
        if isinstance(claim, SectionClaim):
            rows = self._conn.execute(
                "SELECT DISTINCT h.hold_id FROM seats s JOIN holds h ON h.hold_id = s.hold_id"
                " WHERE s.event_id = ? AND s.section = ? AND s.status = 'held'"
                " AND h.status = 'active' AND h.expires_at_us <= ?",
                (claim.event_id, claim.section, now_us),
            ).fetchall()
        elif isinstance(claim, SeatClaim):
            rows = self._conn.execute(
                "SELECT DISTINCT h.hold_id FROM seats s JOIN holds h ON h.hold_id = s.hold_id"
                f" WHERE s.seat_id IN ({marks(claim.quantity)}) AND s.status = 'held'"
                " AND h.status = 'active' AND h.expires_at_us <= ?",
                (*claim.seat_ids, now_us),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT hold_id FROM holds WHERE pool_id = ? AND status = 'active'"
                " AND expires_at_us <= ?",
                (claim.pool_id, now_us),
            ).fetchall()
        return sum(1 for (hold_id,) in rows if self.expire_hold(hold_id))

    def lock_seats(self, seat_ids: Sequence[str], *, nowait: bool = False) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database-wide write lock.

        `nowait` changes nothing either: the wait happened at BEGIN IMMEDIATE, for the
        database lock (up to the busy timeout), before any row could be named.
        """

    def lock_pool(self, pool_id: str, *, nowait: bool = False) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database-wide write lock."""

    def lock_free_seats(self, claim: SectionClaim, start: float) -> list[str]:
        """Free seats of the section: a plain selection, since no other writer can run now."""
        # The caller released lapsed holds; a time before every expiry counts none as lapsed.
        return self._free_in_section(claim, -1, start)

    def write_seats(self, seat_ids: Sequence[str], hold_id: str, stage: Stage) -> None:
        """Overwrite the seats' owner, whatever their status (unguarded)."""
        self._conn.execute(
            "UPDATE seats SET status = ?, hold_id = ?, version = version + 1"
            f" WHERE seat_id IN ({marks(len(seat_ids))})",
            (stage.value, hold_id, *seat_ids),
        )

    def claim_seats_if_free(self, seat_ids: Sequence[str], hold_id: str, stage: Stage) -> int:
        """Take the seats that are available; return how many were taken."""
        return self._conn.execute(
            "UPDATE seats SET status = ?, hold_id = ?, version = version + 1"
            f" WHERE seat_id IN ({marks(len(seat_ids))}) AND status = 'available'",
            (stage.value, hold_id, *seat_ids),
        ).rowcount

    def claim_seats_if_version(self, seen: Mapping[str, int], hold_id: str, stage: Stage) -> int:
        """Take the seats still at the version seen when they were checked."""
        cursor = self._conn.executemany(
            "UPDATE seats SET status = ?, hold_id = ?, version = version + 1"
            " WHERE seat_id = ? AND version = ?",
            [(stage.value, hold_id, seat_id, version) for seat_id, version in seen.items()],
        )
        return cursor.rowcount

    def write_pool(self, pool_id: str, column: Stage, value: int) -> None:
        """Overwrite a pool counter with a value computed from an earlier read (unguarded)."""
        self._conn.execute(
            f"UPDATE pools SET {POOL_COLUMN[column]} = ?, version = version + 1 WHERE pool_id = ?",
            (value, pool_id),
        )

    def claim_pool_if_room(self, pool_id: str, quantity: int, stage: Stage) -> int:
        """Add `quantity` to a counter only if capacity allows; 1 if it did."""
        column = POOL_COLUMN[stage]
        return self._conn.execute(
            f"UPDATE pools SET {column} = {column} + ?, version = version + 1"
            " WHERE pool_id = ? AND held + sold + ? <= capacity",
            (quantity, pool_id, quantity),
        ).rowcount

    def claim_or_abort(
        self,
        claim: Claim,
        hold_id: str,
        stage: Stage,
        versions: Mapping[str, int] | None = None,
    ) -> None:
        """Take everything the claim names (with `versions`: only rows still at the version
        seen), or raise InventoryTakenError (nothing is queued on SQLite: one writer at a
        time, in-process)."""
        if isinstance(claim, SeatClaim):
            taken = (
                self.claim_seats_if_free(claim.seat_ids, hold_id, stage)
                if versions is None
                else self.claim_seats_if_version(versions, hold_id, stage)
            )
        elif versions is None:
            taken = claim.quantity * self.claim_pool_if_room(claim.pool_id, claim.quantity, stage)
        else:
            seen = versions[claim.pool_id]
            taken = claim.quantity * self.claim_pool_if_version(
                claim.pool_id, claim.quantity, stage, seen
            )
        if taken < claim.quantity:
            raise InventoryTakenError(f"the inventory of hold {hold_id} is taken")

    def flush(self) -> None:
        """Nothing is ever queued on SQLite."""

    def claim_pool_if_version(
        self, pool_id: str, quantity: int, stage: Stage, seen_version: int
    ) -> int:
        """Add `quantity` to a counter only if nobody wrote the pool since it was read."""
        column = POOL_COLUMN[stage]
        return self._conn.execute(
            f"UPDATE pools SET {column} = {column} + ?, version = version + 1"
            " WHERE pool_id = ? AND version = ?",
            (quantity, pool_id, seen_version),
        ).rowcount

    # -- holds ----------------------------------------------------------------------------

    def insert_hold(self, hold: Hold) -> int:
        """Store a hold and return its fence (a token that only grows)."""
        fence = self._conn.execute("SELECT COALESCE(MAX(fence), 0) + 1 FROM holds").fetchone()[0]
        claim = hold.claim
        pool_id = claim.pool_id if isinstance(claim, PoolClaim) else None
        self._conn.execute(
            "INSERT INTO holds (hold_id, fence, event_id, buyer_id, status, pool_id, quantity,"
            " created_at_us, expires_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hold.hold_id,
                fence,
                claim.event_id,
                hold.buyer_id,
                hold.status.value,
                pool_id,
                claim.quantity,
                to_us(hold.created_at),
                to_us(hold.expires_at),
            ),
        )
        if isinstance(claim, SeatClaim):
            self._conn.executemany(
                "INSERT INTO hold_seats (hold_id, seat_id) VALUES (?, ?)",
                [(hold.hold_id, seat_id) for seat_id in claim.seat_ids],
            )
        return int(fence)

    def get_hold(self, hold_id: str) -> Hold | None:
        """A hold with its claim, or None."""
        return records.load_hold(self._conn, hold_id)

    def _lapsed_pool_units(self, pool_id: str, now_us: int) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(SUM(quantity), 0) FROM holds WHERE pool_id = ?"
            " AND status = 'active' AND expires_at_us <= ?",
            (pool_id, now_us),
        ).fetchone()
        return int(row[0])

    # -- orders and tickets ---------------------------------------------------------------

    def price_of(self, claim: Claim) -> Money:
        """What the claimed inventory costs."""
        return records.price_of(self._conn, claim)

    def insert_order(self, order: Order) -> None:
        """Store a new order."""
        records.insert_order(self._conn, order)

    def get_order(self, order_id: str) -> Order | None:
        """An order, or None."""
        return records.load_order(self._conn, order_id)

    def orders_of(self, buyer_id: str, limit: int) -> list[Order]:
        """A buyer's newest orders first."""
        return records.load_orders_of(self._conn, buyer_id, limit)

    def insert_tickets(self, tickets: Sequence[Ticket]) -> None:
        """Store issued tickets."""
        records.insert_tickets(self._conn, tickets)

    def tickets_of(self, order_id: str) -> list[Ticket]:
        """An order's tickets, valid or void."""
        return records.load_tickets(self._conn, order_id)

    def advisory_lock(self, resources: Sequence[str]) -> int:
        """BEGIN IMMEDIATE already holds the database lock: draw the next token under it."""
        row = self._conn.execute("SELECT COALESCE(MAX(token), 0) + 1 FROM fences").fetchone()
        return int(row[0])

    def check_fence(self, resource: str, token: int) -> None:
        """Record `token` for `resource`, or raise FencedOutError if a higher one was seen."""
        accepted = self._conn.execute(
            "INSERT INTO fences (resource, token) VALUES (?, ?) ON CONFLICT (resource)"
            " DO UPDATE SET token = excluded.token WHERE fences.token <= excluded.token",
            (resource, token),
        ).rowcount
        if accepted != 1:
            raise FencedOutError(f"fencing token {token} for {resource} is stale")

    # -- money ----------------------------------------------------------------------------

    def ensure_account(self, account_id: str, kind: AccountKind, currency: str) -> None:
        """Open an account with a zero balance unless it exists."""
        self._conn.execute(
            "INSERT INTO accounts (account_id, kind, currency) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id) DO NOTHING",
            (account_id, kind.value, currency),
        )

    def post_transfer(self, transfer: Transfer) -> None:
        """Debit, credit and record a transfer; the debit is conditional, never negative."""
        amount = transfer.amount.amount_minor
        currency = transfer.amount.currency
        debited = self._conn.execute(
            "UPDATE accounts SET balance_minor = balance_minor - ?"
            " WHERE account_id = ? AND currency = ? AND (balance_minor >= ? OR kind = 'world')",
            (amount, transfer.source, currency, amount),
        ).rowcount
        if debited != 1:
            if self.balance(transfer.source) is None:
                raise missing_account(transfer.source, currency)
            raise short_of(transfer.source, transfer.amount)
        credited = self._conn.execute(
            "UPDATE accounts SET balance_minor = balance_minor + ?"
            " WHERE account_id = ? AND currency = ?",
            (amount, transfer.destination, currency),
        ).rowcount
        if credited != 1:
            raise missing_account(transfer.destination, currency)
        records.insert_transfer(self._conn, transfer)

    def record_sale(self, sale: Sale) -> None:
        """Everything a claimed sale adds; raises why if the wallet cannot pay."""
        if sale.new_hold is not None:
            self.insert_hold(sale.new_hold)
        sales.record_sale(self._conn, sale)

    # -- events ---------------------------------------------------------------------------

    def insert_event(self, event: Event) -> None:
        """Store an event with its seats and pools."""
        records.insert_event(self._conn, event)

    def availability(self, event_id: str, now: datetime) -> Availability | None:
        """The seat map and pool counts, lapsed holds counted as free."""
        return records.availability(self._conn, event_id, to_us(now))


def _effective(status: str, hold_status: str | None, expires_at_us: int | None, now_us: int) -> str:
    lapsed = (
        status == "held"
        and hold_status == "active"
        and expires_at_us is not None
        and expires_at_us <= now_us
    )
    return "available" if lapsed else status
