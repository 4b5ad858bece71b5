"""Idempotency-Key begins on an asyncio connection pool: one statement, no worker thread.

Every keyed request starts by inserting its key's running record (or reading the record the
key has). Through the threaded store that costs a hop to a worker thread and three round
trips (BEGIN, the statement, COMMIT); here it is one autocommit statement awaited on the
event loop (`INSERT_OR_READ` of idempotency_records, which also says why it is race-free).

Its commits are not durable (`synchronous_commit = off`, as the threaded begin's): a record
that a crash loses had nothing committed under it, since the request's own durable commit
would have flushed it first. A takeover of a dead attempt, which must lock the record and wait
for that attempt's writes, stays with the threaded store (`IdempotencyService.begin`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from lastseat.adapters.idempotency_records import INSERT_OR_READ, begin_values, stored_request
from lastseat.adapters.postgres.errors import translated
from lastseat.adapters.postgres.store import PostgresOptions
from lastseat.service.idempotency import RequestKey, StoredRequest

_SQL = INSERT_OR_READ.replace("?", "%s")


class PostgresRequestBegins:
    """`RequestBegins` on its own small asyncio pool; `await open()` inside the event loop."""

    def __init__(self, dsn: str, size: int) -> None:
        options = replace(PostgresOptions(), synchronous_commit="off")
        self._pool = AsyncConnectionPool(
            dsn,
            min_size=size,
            max_size=size,
            kwargs=options.connection_kwargs(),
            timeout=options.pool_timeout_s,
            name="lastseat-begins",
            open=False,
        )

    async def open(self) -> None:
        """Open the pool and its connections."""
        with translated():
            await self._pool.open(wait=True)

    async def begin_request(
        self,
        record_id: str,
        key: RequestKey,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
    ) -> StoredRequest | None:
        """Store a new running record (attempt 1) as `record_id`, or read the key's record;
        None if neither (reaped, or a concurrent begin's record is not visible yet)."""
        params = begin_values(record_id, key, fingerprint, now, lease_until)
        with translated():
            async with self._pool.connection() as conn:
                cursor = await conn.execute(_SQL, params)
                row = await cursor.fetchone()
        return None if row is None else stored_request(row)

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()
