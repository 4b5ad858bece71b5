"""Row <-> domain object mapping for the SQLite store (no concurrency decisions here)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from lastseat.domain.errors import NotFoundError
from lastseat.domain.holds import Claim, Hold, HoldStatus, PoolClaim, SeatClaim
from lastseat.domain.inventory import Event
from lastseat.domain.ledger import Transfer
from lastseat.domain.money import Money
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.tickets import Ticket, TicketStatus
from lastseat.service.ports import Availability, PoolView, SeatView

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_us(value: int) -> datetime:
    """The UTC datetime for microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def load_hold(conn: sqlite3.Connection, hold_id: str) -> Hold | None:
    """A hold with its claim, or None."""
    row = conn.execute(
        "SELECT buyer_id, event_id, status, pool_id, quantity, created_at_us, expires_at_us,"
        " fence FROM holds WHERE hold_id = ?",
        (hold_id,),
    ).fetchone()
    if row is None:
        return None
    buyer_id, event_id, status, pool_id, quantity, created_us, expires_us, fence = row
    claim: Claim
    if pool_id is not None:
        claim = PoolClaim(event_id, pool_id, quantity)
    else:
        seats = conn.execute(
            "SELECT seat_id FROM hold_seats WHERE hold_id = ? ORDER BY seat_id", (hold_id,)
        ).fetchall()
        claim = SeatClaim(event_id, tuple(s[0] for s in seats))
    return Hold(
        hold_id,
        buyer_id,
        claim,
        HoldStatus(status),
        from_us(created_us),
        from_us(expires_us),
        fence,
    )


def price_of(conn: sqlite3.Connection, claim: Claim) -> Money:
    """The price of the claimed inventory in the event's currency."""
    if isinstance(claim, PoolClaim):
        row = conn.execute(
            "SELECT p.price_minor * ?, e.currency FROM pools p JOIN events e USING (event_id)"
            " WHERE p.pool_id = ?",
            (claim.quantity, claim.pool_id),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT SUM(s.price_minor), e.currency FROM seats s JOIN events e USING (event_id)"
            f" WHERE s.seat_id IN ({', '.join('?' * claim.quantity)})",
            claim.seat_ids,
        ).fetchone()
    if row is None or row[0] is None:
        raise NotFoundError("the claimed inventory does not exist")
    return Money(int(row[0]), row[1])


def insert_order(conn: sqlite3.Connection, order: Order) -> None:
    """Store a new order."""
    conn.execute(
        "INSERT INTO orders (order_id, buyer_id, event_id, hold_id, status, amount_minor,"
        " currency, quantity, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order.order_id,
            order.buyer_id,
            order.event_id,
            order.hold_id,
            order.status.value,
            order.amount.amount_minor,
            order.amount.currency,
            order.quantity,
            to_us(order.created_at),
        ),
    )


def load_order(conn: sqlite3.Connection, order_id: str) -> Order | None:
    """An order, or None."""
    row = conn.execute(
        "SELECT order_id, buyer_id, event_id, hold_id, status, amount_minor, currency,"
        " quantity, created_at_us FROM orders WHERE order_id = ?",
        (order_id,),
    ).fetchone()
    if row is None:
        return None
    return Order(
        row[0],
        row[1],
        row[2],
        row[3],
        OrderStatus(row[4]),
        Money(row[5], row[6]),
        row[7],
        from_us(row[8]),
    )


def load_orders_of(conn: sqlite3.Connection, buyer_id: str, limit: int) -> list[Order]:
    """A buyer's newest orders first."""
    rows = conn.execute(
        "SELECT order_id FROM orders WHERE buyer_id = ? ORDER BY created_at_us DESC, order_id"
        " LIMIT ?",
        (buyer_id, limit),
    ).fetchall()
    return [order for (order_id,) in rows if (order := load_order(conn, order_id)) is not None]


def insert_tickets(conn: sqlite3.Connection, tickets: Sequence[Ticket]) -> None:
    """Store issued tickets."""
    conn.executemany(
        "INSERT INTO tickets (ticket_id, order_id, event_id, seat_id, pool_id, code, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (t.ticket_id, t.order_id, t.event_id, t.seat_id, t.pool_id, t.code, t.status.value)
            for t in tickets
        ],
    )


def load_tickets(conn: sqlite3.Connection, order_id: str) -> list[Ticket]:
    """An order's tickets."""
    rows = conn.execute(
        "SELECT ticket_id, order_id, event_id, seat_id, pool_id, code, status FROM tickets"
        " WHERE order_id = ? ORDER BY ticket_id",
        (order_id,),
    ).fetchall()
    return [Ticket(r[0], r[1], r[2], r[3], r[4], r[5], TicketStatus(r[6])) for r in rows]


def insert_transfer(conn: sqlite3.Connection, transfer: Transfer) -> None:
    """Record a transfer and its two ledger entries (balances are updated by the caller)."""
    conn.execute(
        "INSERT INTO transfers (transfer_id, kind, source, destination, amount_minor, currency,"
        " order_id, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?,"
        " CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))",
        (
            transfer.transfer_id,
            transfer.kind.value,
            transfer.source,
            transfer.destination,
            transfer.amount.amount_minor,
            transfer.amount.currency,
            transfer.order_id,
        ),
    )
    conn.executemany(
        "INSERT INTO ledger_entries (transfer_id, account_id, amount_minor) VALUES (?, ?, ?)",
        [(transfer.transfer_id, account, amount) for account, amount in transfer.entries()],
    )


def insert_event(conn: sqlite3.Connection, event: Event) -> None:
    """Store an event with its seats and pools."""
    conn.execute(
        "INSERT INTO events (event_id, name, currency, created_at_us) VALUES (?, ?, ?,"
        " CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))",
        (event.event_id, event.name, event.currency),
    )
    conn.executemany(
        "INSERT INTO seats (seat_id, event_id, section, row_number, number, price_minor)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (s.seat_id, event.event_id, s.section, s.row, s.number, s.price.amount_minor)
            for s in event.seats
        ],
    )
    conn.executemany(
        "INSERT INTO pools (pool_id, event_id, name, capacity, price_minor) VALUES (?, ?, ?, ?, ?)",
        [
            (p.pool_id, event.event_id, p.name, p.capacity, p.price.amount_minor)
            for p in event.pools
        ],
    )


def availability(conn: sqlite3.Connection, event_id: str, now_us: int) -> Availability | None:
    """The seat map and pool counts, with lapsed holds counted as free."""
    event = conn.execute(
        "SELECT name, currency FROM events WHERE event_id = ?", (event_id,)
    ).fetchone()
    if event is None:
        return None
    name, currency = event
    seat_rows = conn.execute(
        "SELECT s.seat_id, s.section, s.row_number, s.number, s.price_minor,"
        " s.status = 'available' OR (s.status = 'held' AND h.status = 'active'"
        "   AND h.expires_at_us <= ?)"
        " FROM seats s LEFT JOIN holds h ON h.hold_id = s.hold_id"
        " WHERE s.event_id = ? ORDER BY s.seat_id",
        (now_us, event_id),
    ).fetchall()
    pool_rows = conn.execute(
        "SELECT p.pool_id, p.name, p.capacity, p.capacity - p.sold - p.held + COALESCE("
        "   (SELECT SUM(quantity) FROM holds h WHERE h.pool_id = p.pool_id"
        "    AND h.status = 'active' AND h.expires_at_us <= ?), 0), p.price_minor"
        " FROM pools p WHERE p.event_id = ? ORDER BY p.name",
        (now_us, event_id),
    ).fetchall()
    seats = tuple(
        SeatView(r[0], r[1], r[2], r[3], Money(r[4], currency), bool(r[5])) for r in seat_rows
    )
    pools = tuple(PoolView(r[0], r[1], r[2], r[3], Money(r[4], currency)) for r in pool_rows)
    return Availability(event_id, name, seats, pools)
