"""Idempotency-Key records, shared by the SQLite and PostgreSQL transactions.

A fenced write reads the key's row with the dialect's share lock: on PostgreSQL (FOR KEY SHARE)
a takeover, which locks the row FOR UPDATE first, waits until the writing transaction ends,
and a write that comes after the takeover committed sees the new attempt and is refused::

    A (attempt 1): SELECT attempt ... FOR KEY SHARE -> 1     B: SELECT ... FOR UPDATE ... waits
    A: INSERT order; COMMIT                                  B: (row free) attempt = 2, runs
    A': SELECT attempt ... FOR KEY SHARE -> 2 != 1 -> FencedOutError

FOR KEY SHARE rather than FOR SHARE: the live request's own lease renewals (an UPDATE of a
non-key column) must not wait for its writing transaction, which may run long.

SQLite has one writer at a time (BEGIN IMMEDIATE), so no takeover can slip in between a fence
check and its commit there either: the takeover is a write too.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lastseat.adapters.dialect import Dialect
from lastseat.adapters.sqlite.records import from_us, to_us
from lastseat.domain.errors import FencedOutError
from lastseat.service.idempotency import RequestFence, RequestKey, StoredRequest, StoredResponse

_RECORD = "record_id, fingerprint, attempt, lease_until_us, status, headers, body"
_BY_KEY = "principal = ? AND method = ? AND path = ? AND idempotency_key = ?"
_INSERT = (
    "INSERT INTO idempotency_keys (record_id, principal, method, path, idempotency_key,"
    " fingerprint, attempt, lease_until_us, created_at_us)"
    " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING"
)
# The read half cannot see the insert's row (one statement, one snapshot), so at most one half
# answers. A concurrent begin's insert that commits while this one waits on it is not seen
# either: then neither answers, and begin() asks again.
INSERT_OR_READ = (
    f"WITH new AS ({_INSERT} RETURNING {_RECORD})"
    f" SELECT {_RECORD} FROM new UNION ALL SELECT {_RECORD} FROM idempotency_keys"
    f" WHERE {_BY_KEY} AND NOT EXISTS (SELECT 1 FROM new)"
)


class IdempotencyRecordsSql(Dialect):
    """Mixin of both transactions: the idempotency-key table."""

    def check_request_fence(self, fence: RequestFence) -> None:
        """Refuse a dead attempt's late writes (see RequestFence)."""
        row = self._run(
            "SELECT attempt FROM idempotency_keys WHERE record_id = ?" + self._FOR_SHARE,
            (fence.record_id,),
        ).fetchone()
        if row is None or row[0] != fence.attempt:
            raise FencedOutError(
                f"request {fence.record_id} attempt {fence.attempt} was taken over"
            )

    def begin_request(
        self,
        record_id: str,
        key: RequestKey,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
    ) -> StoredRequest | None:
        """Store a new running record (attempt 1) as `record_id`, or read the key's record;
        None if neither (it was reaped, or another begin's insert is not visible yet)."""
        if self._MARK == "?":  # SQLite: no INSERT in a WITH; in process, two statements are cheap
            values = begin_values(record_id, key, fingerprint, now, lease_until)[:8]
            if self._run(_INSERT, values).rowcount == 1:
                return StoredRequest(record_id, fingerprint, 1, lease_until, None)
            return self._find_request(key)
        # PostgreSQL: one statement (one round trip) inserts, or reads what the key has.
        row = self._run(
            INSERT_OR_READ, begin_values(record_id, key, fingerprint, now, lease_until)
        ).fetchone()
        return None if row is None else stored_request(row)

    def _find_request(self, key: RequestKey) -> StoredRequest | None:
        row = self._run(
            f"SELECT {_RECORD} FROM idempotency_keys WHERE {_BY_KEY}", _key_values(key)
        ).fetchone()
        return None if row is None else stored_request(row)

    def take_over_request(
        self, record_id: str, seen_attempt: int, now: datetime, lease_until: datetime
    ) -> bool:
        """attempt + 1 and a new lease, if still unfinished at `seen_attempt`, lease over."""
        # Lock the row outright first: this waits for any write still running under the old
        # attempt (it holds the row with _FOR_SHARE), which a plain UPDATE would not.
        self._run(
            "SELECT 1 FROM idempotency_keys WHERE record_id = ?" + self._FOR_UPDATE, (record_id,)
        )
        return bool(
            self._run(
                "UPDATE idempotency_keys SET attempt = attempt + 1, lease_until_us = ?"
                " WHERE record_id = ? AND attempt = ? AND status IS NULL"
                " AND lease_until_us <= ?",
                (to_us(lease_until), record_id, seen_attempt, to_us(now)),
            ).rowcount
            == 1
        )

    def renew_request(self, fence: RequestFence, lease_until: datetime) -> bool:
        """Extend a running record's lease if `fence` is still its attempt."""
        return self._fenced_update("lease_until_us = ?", (to_us(lease_until),), fence)

    def finish_request(self, fence: RequestFence, response: StoredResponse, now: datetime) -> bool:
        """Store the answer if `fence` is still the record's attempt and it is unfinished."""
        return self._fenced_update(
            "status = ?, headers = ?, body = ?, finished_at_us = ?",
            (response.status, json.dumps(response.headers), response.body, to_us(now)),
            fence,
        )

    def release_request(self, fence: RequestFence, now: datetime) -> bool:
        """End the lease now, so the next retry takes over, if `fence` still holds."""
        return self._fenced_update("lease_until_us = ?", (to_us(now),), fence)

    def reap_requests(self, created_before: datetime, limit: int) -> int:
        """Delete up to `limit` records made before `created_before`; return how many."""
        return int(
            self._run(
                "DELETE FROM idempotency_keys WHERE record_id IN (SELECT record_id"
                " FROM idempotency_keys WHERE created_at_us < ? ORDER BY created_at_us LIMIT ?"
                + self._SKIP_LOCKED
                + ")",
                (to_us(created_before), limit),
            ).rowcount
        )

    def has_transfer(self, transfer_id: str) -> bool:
        """True if a transfer with this id was committed."""
        row = self._run("SELECT 1 FROM transfers WHERE transfer_id = ?", (transfer_id,)).fetchone()
        return row is not None

    def _fenced_update(
        self, assignments: str, values: tuple[object, ...], fence: RequestFence
    ) -> bool:
        return bool(
            self._run(
                f"UPDATE idempotency_keys SET {assignments}"
                " WHERE record_id = ? AND attempt = ? AND status IS NULL",
                (*values, fence.record_id, fence.attempt),
            ).rowcount
            == 1
        )


def _key_values(key: RequestKey) -> tuple[str, str, str, str]:
    return (key.principal, key.method, key.path, key.key)


def begin_values(
    record_id: str, key: RequestKey, fingerprint: str, now: datetime, lease_until: datetime
) -> tuple[object, ...]:
    """The parameters of INSERT_OR_READ (its first eight are the plain insert's)."""
    new = (record_id, *_key_values(key), fingerprint, to_us(lease_until), to_us(now))
    return (*new, *_key_values(key))


def stored_request(row: tuple[Any, ...]) -> StoredRequest:
    """A record as INSERT_OR_READ (or a read of the same columns) returns it."""
    response = None
    if row[4] is not None:
        response = StoredResponse(row[4], _headers(row[5]), bytes(row[6]))
    return StoredRequest(row[0], row[1], row[2], from_us(row[3]), response)


def _headers(text: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in json.loads(text or "[]"))
