"""One PostgreSQL transaction (READ COMMITTED unless the store was asked for another level).

Design note. PostgreSQL has many writers at once, so the guard is per row, not per database.
Two rules keep the last seat from being sold twice and keep groups from deadlocking:

1. Conditional writes are re-checked after a lock wait. At READ COMMITTED an UPDATE that
   waited for another transaction's row lock re-reads the newest committed row and evaluates
   its WHERE again (EvalPlanQual), so::

       A: UPDATE seats SET sold-by-A WHERE seat_id = 7 AND status = 'available'  -> 1 row
       B: UPDATE seats SET sold-by-B WHERE seat_id = 7 AND status = 'available'  ... waits
       A: COMMIT
       B: (re-reads seat 7: sold) -> 0 rows: refused, never a second sale

   The same holds for `held + sold + n <= capacity` and `version = :seen`.

2. Row locks are taken in one global order: seats by ascending seat_id, accounts by ascending
   account_id. Without it two overlapping groups lock crosswise and one of them dies::

       A: lock seat 1        B: lock seat 2
       A: lock seat 2 ...    B: lock seat 1 ...   -> deadlock (40P01)

   With it both start at seat 1; the second waits there and holds nothing the first needs.
   Every seat-claiming statement therefore locks its candidate rows in a sub-select
   `ORDER BY seat_id FOR UPDATE` before the outer UPDATE checks and writes them.

Nothing here decides *whether* a claim is safe; strategies do, by which primitive they call.
`write_seats` and `write_pool` are unguarded on purpose (used by `naive`, or by `row-lock` once
it holds the lock).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import psycopg

from lastseat.adapters.hold_records import POOL_COLUMN, HoldRecordsSql
from lastseat.adapters.idempotency_records import IdempotencyRecordsSql
from lastseat.adapters.payment_records import PaymentRecords
from lastseat.adapters.postgres import money, records, sales, sections
from lastseat.adapters.postgres.errors import translate, translated
from lastseat.adapters.postgres.records import Conn
from lastseat.adapters.sqlite.records import to_us
from lastseat.domain.errors import FencedOutError
from lastseat.domain.holds import (
    Claim,
    ClaimRequest,
    Hold,
    PoolClaim,
    SeatClaim,
    SectionClaim,
)
from lastseat.domain.inventory import Event
from lastseat.domain.ledger import AccountKind, Transfer
from lastseat.domain.money import Money
from lastseat.domain.orders import Order
from lastseat.domain.tickets import Ticket
from lastseat.service.idempotency import RequestFence, StoredResponse
from lastseat.service.ports import Availability, PoolState, Sale, SeatState, Stage
from lastseat.service.statistics import StrategyStatistics

# The seats named by %(ids)s, locked in the global order (rule 2 above).
_SEATS_IN_LOCK_ORDER = (
    "SELECT seat_id FROM seats WHERE seat_id = ANY(%(ids)s) ORDER BY seat_id FOR UPDATE"
)
_SEAT_STATUS = (
    "CASE WHEN s.status = 'held' AND h.status = 'active' AND h.expires_at_us <= %(now)s"
    " THEN 'available' ELSE s.status END"
)
# An uncontended row lock takes ~0.1 ms over loopback; longer means we queued behind a holder.
LOCK_WAIT_THRESHOLD_NS = 1_000_000


class PostgresTx(HoldRecordsSql, IdempotencyRecordsSql, PaymentRecords):
    """An open transaction on one pooled connection; the store commits or rolls it back."""

    _MARK = "%s"
    _FOR_SHARE = " FOR KEY SHARE"
    _FOR_UPDATE = " FOR UPDATE"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: Conn, stats: StrategyStatistics | None = None) -> None:
        self._raw = conn
        self._stats = stats or StrategyStatistics()
        self.locked_at_ns: int | None = None
        # Statements queued for the COMMIT (an open pipeline, see record_sale).
        self._flight: AbstractContextManager[psycopg.Pipeline] | None = None
        self._savepoints = itertools.count(1)
        self._sale_queued = False  # a sale is in the flight (an answer behind it is queued too)

    @property
    def _conn(self) -> Conn:
        """The connection for a statement that reads its answer: anything queued lands first
        (in a pipeline, a row count is not known until the queue is sent and answered)."""
        self.land()
        return self._raw

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A step inside the transaction: if the block raises, only its writes are undone
        (and the transaction, which PostgreSQL aborts on any error, goes on)."""
        name = f"step_{next(self._savepoints)}"
        with translated():
            self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
            self.land()  # a step's queued sale answers inside the step
        except BaseException as exc:
            self.drop_flight()
            with translated():
                self._conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
            if isinstance(exc, psycopg.Error):
                raise translate(exc) from exc
            raise
        with translated():
            self._conn.execute(f"RELEASE SAVEPOINT {name}")

    # -- checks ---------------------------------------------------------------------------

    def read_seats(self, seat_ids: Sequence[str], now: datetime) -> list[SeatState]:
        """Seats in the given order, a seat held by a lapsed hold reading as available."""
        rows = self._conn.execute(
            f"SELECT s.seat_id, {_SEAT_STATUS}, s.version"
            " FROM seats s LEFT JOIN holds h ON h.hold_id = s.hold_id"
            " WHERE s.seat_id = ANY(%(ids)s)",
            {"ids": list(seat_ids), "now": to_us(now)},
        ).fetchall()
        found = {r[0]: SeatState(r[0], r[1], r[2]) for r in rows}
        return [found[s] for s in seat_ids if s in found]

    def read_pool(self, pool_id: str, now: datetime) -> PoolState | None:
        """A pool's counters, units of lapsed holds counted as free."""
        row = self._conn.execute(
            "SELECT capacity, held - COALESCE((SELECT SUM(quantity) FROM holds h"
            "   WHERE h.pool_id = p.pool_id AND h.status = 'active'"
            "   AND h.expires_at_us <= %s), 0), sold, version"
            " FROM pools p WHERE pool_id = %s",
            (to_us(now), pool_id),
        ).fetchone()
        return PoolState(pool_id, row[0], int(row[1]), row[2], row[3]) if row else None

    def missing_inventory(self, claim: ClaimRequest) -> list[str]:
        """Ids the claim names that do not exist in its event."""
        if isinstance(claim, SectionClaim):
            return [] if sections.section_exists(self._conn, claim) else [claim.section]
        if isinstance(claim, PoolClaim):
            row = self._conn.execute(
                "SELECT 1 FROM pools WHERE pool_id = %s AND event_id = %s",
                (claim.pool_id, claim.event_id),
            ).fetchone()
            return [] if row else [claim.pool_id]
        rows = self._conn.execute(
            "SELECT seat_id FROM seats WHERE event_id = %s AND seat_id = ANY(%s)",
            (claim.event_id, list(claim.seat_ids)),
        ).fetchall()
        present = {r[0] for r in rows}
        return [s for s in claim.seat_ids if s not in present]

    def free_seats(self, claim: SectionClaim, now: datetime, start: float) -> list[str]:
        """Up to `claim.quantity` free seats of the section from `start` on, ascending."""
        return sections.free_seats(self._conn, claim, to_us(now), start)

    # -- claim primitives -----------------------------------------------------------------

    def release_lapsed_holds(self, claim: ClaimRequest, now: datetime) -> int:
        """Expire the lapsed holds that sit on this claim's inventory; return how many."""
        if isinstance(claim, SectionClaim):
            lapsed = sections.lapsed_holds_in(self._conn, claim, to_us(now))
            return sum(1 for hold_id in lapsed if self.expire_hold(hold_id))
        if isinstance(claim, SeatClaim):
            rows = self._conn.execute(
                "SELECT DISTINCT h.hold_id FROM seats s JOIN holds h ON h.hold_id = s.hold_id"
                " WHERE s.seat_id = ANY(%s) AND s.status = 'held'"
                " AND h.status = 'active' AND h.expires_at_us <= %s ORDER BY h.hold_id",
                (list(claim.seat_ids), to_us(now)),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT hold_id FROM holds WHERE pool_id = %s AND status = 'active'"
                " AND expires_at_us <= %s ORDER BY hold_id",
                (claim.pool_id, to_us(now)),
            ).fetchall()
        return sum(1 for (hold_id,) in rows if self.expire_hold(hold_id))

    def lock_seats(self, seat_ids: Sequence[str], *, nowait: bool = False) -> None:
        """Lock the seats' rows in seat_id order until the transaction ends.

        `nowait`: a row another transaction has locked raises LockNotAvailableError at once
        instead of queueing (up to lock_timeout, then LockTimeoutError).
        """
        with translated(nowait=nowait):
            self._locking(_SEATS_IN_LOCK_ORDER + _nowait(nowait), {"ids": list(seat_ids)})

    def lock_pool(self, pool_id: str, *, nowait: bool = False) -> None:
        """Lock the pool's row until the transaction ends (`nowait`: as for lock_seats)."""
        with translated(nowait=nowait):
            self._locking(
                "SELECT 1 FROM pools WHERE pool_id = %(id)s FOR UPDATE" + _nowait(nowait),
                {"id": pool_id},
            )

    def lock_free_seats(self, claim: SectionClaim, start: float) -> list[str]:
        """Lock up to `claim.quantity` available seats of the section, skipping locked rows."""
        found = sections.lock_free_seats(self._conn, claim, start)
        if found and self.locked_at_ns is None:
            self.locked_at_ns = time.monotonic_ns()
        return found

    def write_seats(self, seat_ids: Sequence[str], hold_id: str, stage: Stage) -> None:
        """Overwrite the seats' owner, whatever their status (unguarded). Nothing waits for its
        answer: it is queued to travel with the sale and the COMMIT (sales.py)."""
        self._queue()
        self._raw.execute(
            "UPDATE seats SET status = %s, hold_id = %s, version = version + 1"
            " WHERE seat_id = ANY(%s)",
            (stage.value, hold_id, list(seat_ids)),
            prepare=False,  # queued: see sales.py
        )

    def claim_seats_if_free(self, seat_ids: Sequence[str], hold_id: str, stage: Stage) -> int:
        """Take the seats that are available; return how many were taken."""
        return self._locking(
            "UPDATE seats SET status = %(stage)s, hold_id = %(hold)s, version = version + 1"
            f" WHERE seat_id IN ({_SEATS_IN_LOCK_ORDER}) AND status = 'available'",
            {"stage": stage.value, "hold": hold_id, "ids": list(seat_ids)},
        )

    def claim_seats_if_version(self, seen: Mapping[str, int], hold_id: str, stage: Stage) -> int:
        """Take the seats still at the version seen when they were checked."""
        return self._locking(
            "UPDATE seats s SET status = %(stage)s, hold_id = %(hold)s, version = s.version + 1"
            " FROM unnest(%(ids)s::text[], %(versions)s::bigint[]) AS seen (seat_id, version)"
            " WHERE s.seat_id = seen.seat_id AND s.version = seen.version"
            f" AND s.seat_id IN ({_SEATS_IN_LOCK_ORDER})",
            {
                "stage": stage.value,
                "hold": hold_id,
                "ids": list(seen),
                "versions": list(seen.values()),
            },
        )

    def write_pool(self, pool_id: str, column: Stage, value: int) -> None:
        """Overwrite a pool counter with a value computed from an earlier read (unguarded);
        queued like write_seats."""
        self._queue()
        self._raw.execute(
            f"UPDATE pools SET {POOL_COLUMN[column]} = %s, version = version + 1"
            " WHERE pool_id = %s",
            (value, pool_id),
            prepare=False,  # queued: see sales.py
        )

    def claim_pool_if_room(self, pool_id: str, quantity: int, stage: Stage) -> int:
        """Add `quantity` to a counter only if capacity allows; 1 if it did."""
        column = POOL_COLUMN[stage]
        return self._locking(
            f"UPDATE pools SET {column} = {column} + %(n)s, version = version + 1"
            " WHERE pool_id = %(id)s AND held + sold + %(n)s <= capacity",
            {"n": quantity, "id": pool_id},
        )

    def claim_or_abort(
        self,
        claim: Claim,
        hold_id: str,
        stage: Stage,
        versions: Mapping[str, int] | None = None,
    ) -> None:
        """Queue the claim: its row lock then lives only as long as the flight that carries it,
        the sale and the COMMIT (sales.py); taking less aborts it with InventoryTakenError.
        With `versions` (seat or pool id -> version seen) it takes only unchanged rows."""
        self._queue()
        if isinstance(claim, SeatClaim):
            statement, params = _seats_claim(claim, versions)
            rows = claim.quantity
        else:
            column = POOL_COLUMN[stage]
            guard = "held + sold + %(n)s <= capacity" if versions is None else "version = %(seen)s"
            statement = (
                f"UPDATE pools SET {column} = {column} + %(n)s, version = version + 1"
                f" WHERE pool_id = %(id)s AND {guard}"
            )
            params = {"id": claim.pool_id, "n": claim.quantity}
            if versions is not None:
                params["seen"] = versions[claim.pool_id]
            rows = 1
        params.update(stage=stage.value, hold=hold_id)
        sales.send_claim(self._raw, statement, params, rows)
        if self.locked_at_ns is None:
            self.locked_at_ns = time.monotonic_ns()

    def flush(self) -> None:
        """Send whatever is queued and wait for it."""
        self.land()

    def claim_pool_if_version(
        self, pool_id: str, quantity: int, stage: Stage, seen_version: int
    ) -> int:
        """Add `quantity` to a counter only if nobody wrote the pool since it was read."""
        column = POOL_COLUMN[stage]
        return self._locking(
            f"UPDATE pools SET {column} = {column} + %(n)s, version = version + 1"
            " WHERE pool_id = %(id)s AND version = %(seen)s",
            {"n": quantity, "id": pool_id, "seen": seen_version},
        )

    def _locking(self, statement: str, params: Mapping[str, Any]) -> int:
        """Run a statement that takes row locks; count the time it queued as a lock wait."""
        started = time.monotonic_ns()
        rowcount = self._conn.execute(statement, params).rowcount
        done = time.monotonic_ns()
        if done - started > LOCK_WAIT_THRESHOLD_NS:
            self._stats.add(lock_waits=1, lock_wait_ns=done - started)
        if self.locked_at_ns is None:
            self.locked_at_ns = done
        return rowcount

    # -- holds ----------------------------------------------------------------------------

    def insert_hold(self, hold: Hold) -> int:
        """Store a hold and return its fence (from a sequence: it only grows)."""
        return records.insert_hold(self._conn, hold)

    def get_hold(self, hold_id: str) -> Hold | None:
        """A hold with its claim, or None."""
        return records.load_hold(self._conn, hold_id)

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
        """`pg_advisory_xact_lock` per resource, in order (fate-shared with this transaction:
        released by COMMIT or ROLLBACK, never by a timer); then a token from a sequence."""
        for resource in resources:
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (resource,))
        row = self._conn.execute("SELECT nextval('advisory_fences')").fetchone()
        assert row is not None
        return int(row[0])

    def check_fence(self, resource: str, token: int) -> None:
        """Record `token` for `resource`, or raise FencedOutError if a higher one was seen."""
        accepted = self._conn.execute(
            "INSERT INTO fences (resource, token) VALUES (%s, %s) ON CONFLICT (resource)"
            " DO UPDATE SET token = excluded.token WHERE fences.token <= excluded.token",
            (resource, token),
        ).rowcount
        if accepted != 1:
            raise FencedOutError(f"fencing token {token} for {resource} is stale")

    # -- money ----------------------------------------------------------------------------

    def ensure_account(self, account_id: str, kind: AccountKind, currency: str) -> None:
        """Open an account with a zero balance unless it exists."""
        self._conn.execute(
            "INSERT INTO accounts (account_id, kind, currency) VALUES (%s, %s, %s)"
            " ON CONFLICT (account_id) DO NOTHING",
            (account_id, kind.value, currency),
        )

    def post_transfer(self, transfer: Transfer) -> None:
        """Debit, credit and record a transfer; never leaves a balance negative."""
        money.post_transfer(self._conn, transfer)

    def record_sale(self, sale: Sale) -> None:
        """Queue everything a claimed sale adds; it travels with the COMMIT (sales.py), and a
        wallet that cannot pay raises then."""
        self._queue()
        sales.send_sale(self._raw, sale)
        self._sale_queued = True

    def finish_request(self, fence: RequestFence, response: StoredResponse, now: datetime) -> bool:
        """Store the request's answer; behind a queued sale it is queued too, and an attempt
        that is over raises FencedOutError when the transaction ends instead of answering
        False now (reading the row count would cost the round trip the queue saves)."""
        if not self._sale_queued:
            return super().finish_request(fence, response, now)
        sales.send_answer(self._raw, fence, response, now)
        return True

    def _queue(self) -> None:
        if self._flight is None:
            flight = self._raw.pipeline()
            flight.__enter__()
            self._flight = flight

    # -- the ends of the transaction --------------------------------------------------------

    def begin(self, begin: str, *, durable: bool = True) -> None:
        """Queue BEGIN (and, if not durable, its commit setting): they travel with the first
        statement that waits for an answer, a round trip less per transaction."""
        self._queue()
        self._raw.execute(begin, prepare=False)
        if not durable:
            self._raw.execute("SET LOCAL synchronous_commit TO OFF", prepare=False)

    def commit(self) -> None:
        """COMMIT, sent with whatever is queued; an error of any of it raises here."""
        self._raw.execute("COMMIT", prepare=False)  # see sales.py: never prepared in a flight
        self.land()

    def land(self) -> None:
        """Send what is queued and wait for the answers: a queued statement's error raises."""
        flight, self._flight = self._flight, None
        self._sale_queued = False
        if flight is not None:
            with translated():
                flight.__exit__(None, None, None)

    def drop_flight(self) -> None:
        """The block failed: end the pipeline; the block's error is the one that counts."""
        flight, self._flight = self._flight, None
        self._sale_queued = False
        if flight is not None:
            # Ended as if it succeeded, so that its own error (often just "pipeline aborted",
            # an echo of the block's) is raised here and dropped, not logged by psycopg.
            with contextlib.suppress(psycopg.Error):
                flight.__exit__(None, None, None)

    # -- events ---------------------------------------------------------------------------

    def insert_event(self, event: Event) -> None:
        """Store an event with its seats and pools."""
        records.insert_event(self._conn, event)

    def availability(self, event_id: str, now: datetime) -> Availability | None:
        """The seat map and pool counts, lapsed holds counted as free."""
        return records.availability(self._conn, event_id, to_us(now))


def _seats_claim(
    claim: SeatClaim, versions: Mapping[str, int] | None
) -> tuple[str, dict[str, Any]]:
    """The conditional UPDATE of a seat claim: seats available, or still at `versions`."""
    ids = list(claim.seat_ids)
    if versions is None:
        return (
            "UPDATE seats SET status = %(stage)s, hold_id = %(hold)s, version = version + 1"
            f" WHERE seat_id IN ({_SEATS_IN_LOCK_ORDER}) AND status = 'available'",
            {"ids": ids},
        )
    return (
        "UPDATE seats s SET status = %(stage)s, hold_id = %(hold)s, version = s.version + 1"
        " FROM unnest(%(ids)s::text[], %(versions)s::bigint[]) AS seen (seat_id, version)"
        " WHERE s.seat_id = seen.seat_id AND s.version = seen.version"
        f" AND s.seat_id IN ({_SEATS_IN_LOCK_ORDER})",
        {"ids": ids, "versions": [versions[s] for s in ids]},
    )


def _nowait(nowait: bool) -> str:
    return " NOWAIT" if nowait else ""
