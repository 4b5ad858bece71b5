"""Idempotency keys for mutating requests: begin, finish, release, take over, reap.

Design note. A key names one request of one principal (method + path + key). Two interleavings
must not run the operation twice:

1. Two requests with one key, at the same time (a client retried too early)::

       A: begin(key) -> inserts the record, attempt 1, lease until t+30s   -> runs
       B: begin(key) -> finds it running, lease not over                   -> 409, Retry-After
       A: finish(attempt 1, 201 + body)
       B: begin(key) -> finds it finished                                   -> replays A's answer

   The record is inserted with a unique (principal, method, path, key), so exactly one of
   two concurrent inserts wins; the other reads the winner's row.

2. A dead attempt's late write (its server was paused, or killed between two transactions)::

       A: begin -> attempt 1 ...................... (paused past its lease)
       B: begin -> lease over: take over, attempt 2 -> runs, writes, finishes
       A: (wakes) write in a transaction that checks the fence: attempt 1 != 2 -> FencedOutError

   Every write an operation makes checks its `RequestFence` in the writing transaction
   (`check_request_fence`, which holds the record's row shared until commit), and ids it
   creates are derived from the record, so attempt 2 finds what attempt 1 committed and
   resumes it instead of doing it again.

Answers that are not final (5xx, 202, a transient conflict) are not stored: the record is
released (its lease ends now), so the next retry takes it over and runs again.

3. A crash between the operation's commit and the storing of its answer::

       A: begin -> attempt 1 -> sells: COMMIT    (SIGKILL)    finish(attempt 1, 201) never runs
       B: begin (lease over) -> attempt 2 -> must find A's sale, not sell again

   Attempt 2 resumes what attempt 1 committed (the derived ids above), but a request whose
   use case knows its answer stores it in the operation's own transaction instead: its fence
   carries an `AnswerSlot`, the use case writes `slot.answer(result)` as the record's final
   answer just before COMMIT, and the sale and its stored answer commit together or not at
   all. B then simply replays it, and the request costs one durable commit, not two.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from lastseat.domain.clock import Clock, SystemClock
from lastseat.domain.errors import IdempotencyKeyReusedError
from lastseat.domain.tickets import new_id

if TYPE_CHECKING:
    from lastseat.service.ports import Store

DEFAULT_LEASE = timedelta(seconds=30)
DEFAULT_RETENTION = timedelta(hours=24)
REAP_BATCH = 500
MAX_RETRY_AFTER_S = 5
# How often begin() re-reads a record that vanished (reaped) or was taken over under it.
_BEGIN_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished request's answer, replayed byte for byte."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class AnswerSlot:
    """How a request answers its use case's result, so the use case can store that answer in
    its own transaction (interleaving 3 of the module note).

    The API sets `present` (result -> the final answer, or None for a result whose answer is
    not final); the use case calls `answer(result)` inside its transaction and writes what it
    gets; once the use case has returned, `committed(result)` hands the API that very answer,
    or None if it was not stored (the transaction that made `result` did not write one).
    """

    def __init__(self) -> None:
        self.present: Callable[[Any], StoredResponse | None] | None = None
        self.stored: StoredResponse | None = None
        self._written: tuple[object, StoredResponse] | None = None
        self._lock = threading.Lock()  # the use case may run in another thread (a batch)

    def answer(self, result: object) -> StoredResponse | None:
        """The final answer to store with `result`, if the request's answer to it is final."""
        response = None if self.present is None else self.present(result)
        with self._lock:
            self._written = None if response is None else (result, response)
        return response

    def committed(self, result: object) -> StoredResponse | None:
        """The answer stored with `result` (the use case returned it, so it committed)."""
        with self._lock:
            written = self._written
        if written is None or written[0] is not result:
            return None
        self.stored = written[1]
        return self.stored


@dataclass(frozen=True, slots=True)
class RequestFence:
    """The idempotency record a request runs under, and which attempt at it this is.

    Ids the request creates are derived from `record_id`, so a retry that takes over the key
    (attempt + 1) finds and resumes what an earlier attempt started instead of starting over.
    Writes check `attempt` in their transaction, so a dead attempt's late writes are refused.
    `answer`, if set, lets the use case store the request's answer in its own transaction.
    """

    record_id: str
    attempt: int
    answer: AnswerSlot | None = field(default=None, compare=False, repr=False)

    def derived_id(self, prefix: str) -> str:
        """A stable id for something this request creates, e.g. `derived_id("ord")`."""
        return f"{prefix}_{self.record_id.rsplit('_', 1)[-1]}"


@dataclass(frozen=True, slots=True)
class RequestKey:
    """Which request a key names: the key is scoped to principal, method and path."""

    principal: str
    method: str
    path: str
    key: str


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """An idempotency record as read."""

    record_id: str
    fingerprint: str
    attempt: int
    lease_until: datetime
    response: StoredResponse | None


@dataclass(frozen=True, slots=True)
class Started:
    """This request runs the operation, under `fence`."""

    fence: RequestFence


@dataclass(frozen=True, slots=True)
class Replay:
    """The key's request finished before: answer with its stored response."""

    response: StoredResponse


@dataclass(frozen=True, slots=True)
class InProgress:
    """Another attempt holds the key's lease; try again after `retry_after_s`."""

    retry_after_s: int


Begun = Started | Replay | InProgress


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The hash a key's later requests must match: method, path and the exact body bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyRecords(Protocol):
    """What a write transaction offers for idempotency keys."""

    def check_request_fence(self, fence: RequestFence) -> None:
        """Refuse (FencedOutError) unless `fence.attempt` is still the key's current attempt;
        hold the key's row (shared) until this transaction ends, so no takeover can slip in
        between this check and the commit."""
        ...

    def begin_request(
        self,
        record_id: str,
        key: RequestKey,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
    ) -> StoredRequest | None:
        """Store a new running record (attempt 1) as `record_id`, or read the key's record
        (one statement where the store can); None if neither could be had just now."""
        ...

    def take_over_request(
        self, record_id: str, seen_attempt: int, now: datetime, lease_until: datetime
    ) -> bool:
        """attempt + 1 and a new lease, only if still unfinished at `seen_attempt` and its
        lease ended; waits for transactions that hold the row shared (fenced writes)."""
        ...

    def renew_request(self, fence: RequestFence, lease_until: datetime) -> bool:
        """Extend a running record's lease if `fence` is still its attempt."""
        ...

    def finish_request(self, fence: RequestFence, response: StoredResponse, now: datetime) -> bool:
        """Store the answer if `fence` is still the record's attempt and it is unfinished."""
        ...

    def release_request(self, fence: RequestFence, now: datetime) -> bool:
        """End the lease now (unfinished, so the next retry takes over) if `fence` still holds."""
        ...

    def reap_requests(self, created_before: datetime, limit: int) -> int:
        """Delete up to `limit` records made before `created_before`; return how many."""
        ...

    def has_transfer(self, transfer_id: str) -> bool:
        """True if a transfer with this id was committed (a derived id already used)."""
        ...


class RequestBegins(Protocol):
    """An asyncio store's half of `begin`: one statement, awaited on the event loop."""

    async def begin_request(
        self,
        record_id: str,
        key: RequestKey,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
    ) -> StoredRequest | None:
        """Store a new running record (attempt 1) as `record_id`, or read the key's record;
        None if neither could be had just now."""
        ...

    async def close(self) -> None:
        """Close its connections."""
        ...


class IdempotencyService:
    """Begin, finish and release requests under Idempotency-Keys, over the store."""

    def __init__(
        self,
        store: Store,
        *,
        lease: timedelta = DEFAULT_LEASE,
        retention: timedelta = DEFAULT_RETENTION,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.retention = retention
        self.clock = clock or SystemClock()

    def begin(self, key: RequestKey, request_fingerprint: str) -> Begun:
        """Start the key's request, take over a dead attempt, or say why not (replay, 409)."""
        for _ in range(_BEGIN_ROUNDS):
            now = self.clock.now()
            record_id = new_id("idem")
            # Not durable: if a crash loses this record, nothing done under it was committed
            # either - the request's own (durable) commit would have flushed it first.
            with self.store.write(durable=False) as tx:
                stored = tx.begin_request(
                    record_id, key, request_fingerprint, now, now + self.lease
                )
                if stored is None:
                    continue  # reaped, or a concurrent begin's record not visible yet
                if (
                    begun := _decided(stored, record_id, key, request_fingerprint, now)
                ) is not None:
                    return begun
                lease_until = now + self.lease
                if tx.take_over_request(stored.record_id, stored.attempt, now, lease_until):
                    return Started(RequestFence(stored.record_id, stored.attempt + 1))
        return InProgress(1)

    async def begin_without_takeover(
        self, begins: RequestBegins, key: RequestKey, request_fingerprint: str
    ) -> Begun | None:
        """`begin` in one statement on an asyncio store, for all but its rare turns: None
        when a dead attempt must be taken over or the record could not be had (ask `begin`)."""
        now = self.clock.now()
        record_id = new_id("idem")
        stored = await begins.begin_request(
            record_id, key, request_fingerprint, now, now + self.lease
        )
        if stored is None:
            return None
        return _decided(stored, record_id, key, request_fingerprint, now)

    def finish(self, fence: RequestFence, response: StoredResponse) -> bool:
        """Store the final answer; False if another attempt took the key over meanwhile."""
        with self.store.write() as tx:
            return tx.finish_request(fence, response, self.clock.now())

    def release(self, fence: RequestFence) -> bool:
        """Keep the key retryable: the next request with it takes over and runs again."""
        # Not durable: lost in a crash, the lease simply runs out later.
        with self.store.write(durable=False) as tx:
            return tx.release_request(fence, self.clock.now())

    def renew(self, fence: RequestFence) -> bool:
        """Extend a live request's lease; False if it was lost to a takeover."""
        with self.store.write(durable=False) as tx:
            return tx.renew_request(fence, self.clock.now() + self.lease)

    def reap(self, limit: int = REAP_BATCH) -> int:
        """Delete up to `limit` records older than the retention; return how many."""
        with self.store.write(durable=False) as tx:
            return tx.reap_requests(self.clock.now() - self.retention, limit)


def _decided(
    stored: StoredRequest, record_id: str, key: RequestKey, request_fingerprint: str, now: datetime
) -> Begun | None:
    """What a begin that found `stored` answers; None if its dead attempt must be taken over."""
    if stored.record_id == record_id:
        return Started(RequestFence(record_id, 1))
    if stored.fingerprint != request_fingerprint:
        raise IdempotencyKeyReusedError(
            f"Idempotency-Key {key.key!r} was used for a different request body"
        )
    if stored.response is not None:
        return Replay(stored.response)
    if stored.lease_until > now:
        return InProgress(_retry_after_s(stored.lease_until - now))
    return None


def _retry_after_s(remaining: timedelta) -> int:
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(remaining.total_seconds())))
