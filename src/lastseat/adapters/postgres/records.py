"""Row <-> domain object mapping for the PostgreSQL store (no concurrency decisions here).

Times are stored as integer microseconds since the epoch, as in the SQLite store, so the two
share their conversions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Connection

from lastseat.adapters.sqlite.records import from_us, to_us
from lastseat.domain.errors import NotFoundError
from lastseat.domain.holds import Claim, Hold, HoldStatus, PoolClaim, SeatClaim
from lastseat.domain.inventory import Event
from lastseat.domain.ledger import Transfer
from lastseat.domain.money import Money
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.tickets import Ticket, TicketStatus
from lastseat.service.ports import Availability, PoolView, SeatView

Conn = Connection[Any]
NOW_US = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"


def load_hold(conn: Conn, hold_id: str) -> Hold | None:
    """A hold with its claim, or None."""
    row = conn.execute(
        "SELECT buyer_id, event_id, status, pool_id, quantity, created_at_us, expires_at_us,"
        " fence, ARRAY(SELECT seat_id FROM hold_seats hs WHERE hs.hold_id = h.hold_id"
        "   ORDER BY seat_id)"
        " FROM holds h WHERE hold_id = %s",
        (hold_id,),
    ).fetchone()
    if row is None:
        return None
    buyer_id, event_id, status, pool_id, quantity, created_us, expires_us, fence, seats = row
    claim: Claim = (
        PoolClaim(event_id, pool_id, quantity)
        if pool_id is not None
        else SeatClaim(event_id, tuple(seats))
    )
    status = HoldStatus(status)
    return Hold(hold_id, buyer_id, claim, status, from_us(created_us), from_us(expires_us), fence)


_INSERT_HOLD = (
    "INSERT INTO holds (hold_id, fence, event_id, buyer_id, status, pool_id, quantity,"
    " created_at_us, expires_at_us)"
    " VALUES (%s, nextval('hold_fences'), %s, %s, %s, %s, %s, %s, %s)"
)


def insert_hold(conn: Conn, hold: Hold) -> int:
    """Store a hold and return its fence (from a sequence: it only grows)."""
    row = conn.execute(_INSERT_HOLD + " RETURNING fence", _hold_row(hold)).fetchone()
    assert row is not None  # RETURNING of a successful INSERT
    _insert_hold_seats(conn, hold)
    return int(row[0])


def send_hold(conn: Conn, hold: Hold) -> None:
    """Store a hold without waiting for an answer (in a pipeline: no fence comes back; never
    prepared, see adapters/postgres/sales.py)."""
    conn.execute(_INSERT_HOLD, _hold_row(hold), prepare=False)
    _insert_hold_seats(conn, hold, prepare=False)


def _hold_row(hold: Hold) -> tuple[object, ...]:
    claim = hold.claim
    return (
        hold.hold_id,
        claim.event_id,
        hold.buyer_id,
        hold.status.value,
        claim.pool_id if isinstance(claim, PoolClaim) else None,
        claim.quantity,
        to_us(hold.created_at),
        to_us(hold.expires_at),
    )


def _insert_hold_seats(conn: Conn, hold: Hold, *, prepare: bool | None = None) -> None:
    if isinstance(hold.claim, SeatClaim):
        conn.execute(
            "INSERT INTO hold_seats (hold_id, seat_id) SELECT %s, unnest(%s::text[])",
            (hold.hold_id, list(hold.claim.seat_ids)),
            prepare=prepare,
        )


def price_of(conn: Conn, claim: Claim) -> Money:
    """The price of the claimed inventory in the event's currency."""
    if isinstance(claim, PoolClaim):
        row = conn.execute(
            "SELECT p.price_minor * %s, e.currency FROM pools p JOIN events e USING (event_id)"
            " WHERE p.pool_id = %s",
            (claim.quantity, claim.pool_id),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT SUM(s.price_minor), MIN(e.currency) FROM seats s JOIN events e"
            " USING (event_id) WHERE s.seat_id = ANY(%s)",
            (list(claim.seat_ids),),
        ).fetchone()
    if row is None or row[0] is None:
        raise NotFoundError("the claimed inventory does not exist")
    return Money(int(row[0]), row[1])


def insert_order(conn: Conn, order: Order, *, prepare: bool | None = None) -> None:
    """Store a new order (`prepare`: psycopg's, None for its default)."""
    conn.execute(
        "INSERT INTO orders (order_id, buyer_id, event_id, hold_id, status, amount_minor,"
        " currency, quantity, created_at_us) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
        prepare=prepare,
    )


def load_order(conn: Conn, order_id: str) -> Order | None:
    """An order, or None."""
    row = conn.execute(
        "SELECT buyer_id, event_id, hold_id, status, amount_minor, currency, quantity,"
        " created_at_us FROM orders WHERE order_id = %s",
        (order_id,),
    ).fetchone()
    if row is None:
        return None
    buyer_id, event_id, hold_id, status, amount_minor, currency, quantity, created_us = row
    amount = Money(amount_minor, currency)
    status = OrderStatus(status)
    return Order(
        order_id, buyer_id, event_id, hold_id, status, amount, quantity, from_us(created_us)
    )


def load_orders_of(conn: Conn, buyer_id: str, limit: int) -> list[Order]:
    """A buyer's newest orders first."""
    rows = conn.execute(
        "SELECT order_id FROM orders WHERE buyer_id = %s ORDER BY created_at_us DESC, order_id"
        " LIMIT %s",
        (buyer_id, limit),
    ).fetchall()
    return [order for (order_id,) in rows if (order := load_order(conn, order_id)) is not None]


def insert_tickets(conn: Conn, tickets: Sequence[Ticket]) -> None:
    """Store issued tickets."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO tickets (ticket_id, order_id, event_id, seat_id, pool_id, code, status)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (t.ticket_id, t.order_id, t.event_id, t.seat_id, t.pool_id, t.code, t.status.value)
                for t in tickets
            ],
        )


def load_tickets(conn: Conn, order_id: str) -> list[Ticket]:
    """An order's tickets."""
    rows = conn.execute(
        "SELECT ticket_id, order_id, event_id, seat_id, pool_id, code, status FROM tickets"
        " WHERE order_id = %s ORDER BY ticket_id",
        (order_id,),
    ).fetchall()
    return [Ticket(r[0], r[1], r[2], r[3], r[4], r[5], TicketStatus(r[6])) for r in rows]


def insert_transfer(conn: Conn, transfer: Transfer) -> None:
    """Record a transfer and its two ledger entries (balances are updated by the caller)."""
    amount = transfer.amount
    conn.execute(
        "INSERT INTO transfers (transfer_id, kind, source, destination, amount_minor, currency,"
        f" order_id, created_at_us) VALUES (%s, %s, %s, %s, %s, %s, %s, {NOW_US})",
        (
            transfer.transfer_id,
            transfer.kind.value,
            transfer.source,
            transfer.destination,
            amount.amount_minor,
            amount.currency,
            transfer.order_id,
        ),
    )
    accounts, amounts = zip(*transfer.entries(), strict=True)
    conn.execute(
        "INSERT INTO ledger_entries (transfer_id, account_id, amount_minor)"
        " SELECT %s, account_id, amount_minor FROM unnest(%s::text[], %s::bigint[])"
        "   AS e (account_id, amount_minor)",
        (transfer.transfer_id, list(accounts), list(amounts)),
    )


def insert_event(conn: Conn, event: Event) -> None:
    """Store an event with its seats and pools."""
    conn.execute(
        "INSERT INTO events (event_id, name, currency, created_at_us)"
        f" VALUES (%s, %s, %s, {NOW_US})",
        (event.event_id, event.name, event.currency),
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO seats (seat_id, event_id, section, row_number, number, price_minor)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (s.seat_id, event.event_id, s.section, s.row, s.number, s.price.amount_minor)
                for s in event.seats
            ],
        )
        cursor.executemany(
            "INSERT INTO pools (pool_id, event_id, name, capacity, price_minor)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (p.pool_id, event.event_id, p.name, p.capacity, p.price.amount_minor)
                for p in event.pools
            ],
        )


def availability(conn: Conn, event_id: str, now_us: int) -> Availability | None:
    """The seat map and pool counts, with lapsed holds counted as free."""
    event = conn.execute(
        "SELECT name, currency FROM events WHERE event_id = %s", (event_id,)
    ).fetchone()
    if event is None:
        return None
    name, currency = event
    seat_rows = conn.execute(
        "SELECT s.seat_id, s.section, s.row_number, s.number, s.price_minor,"
        " s.status = 'available' OR (s.status = 'held' AND h.status = 'active'"
        "   AND h.expires_at_us <= %s)"
        " FROM seats s LEFT JOIN holds h ON h.hold_id = s.hold_id"
        " WHERE s.event_id = %s ORDER BY s.seat_id",
        (now_us, event_id),
    ).fetchall()
    pool_rows = conn.execute(
        "SELECT p.pool_id, p.name, p.capacity, p.capacity - p.sold - p.held + COALESCE("
        "   (SELECT SUM(quantity) FROM holds h WHERE h.pool_id = p.pool_id"
        "    AND h.status = 'active' AND h.expires_at_us <= %s), 0), p.price_minor"
        " FROM pools p WHERE p.event_id = %s ORDER BY p.name",
        (now_us, event_id),
    ).fetchall()
    seats = tuple(
        SeatView(r[0], r[1], r[2], r[3], Money(r[4], currency), bool(r[5])) for r in seat_rows
    )
    pools = tuple(PoolView(r[0], r[1], r[2], int(r[3]), Money(r[4], currency)) for r in pool_rows)
    return Availability(event_id, name, seats, pools)
