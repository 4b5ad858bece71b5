"""`batched`: concurrent claims on one event share one transaction and one commit.

A one-sale-per-transaction strategy pays a WAL flush per sale while it holds the hot row's
lock, so a hot pool sells at most one sale per flush. Here the claims that arrive while a
batch commits wait in a queue; the next batch takes them all (up to `max_batch`) into one
transaction, each claim in its own savepoint, and commits them with one flush::

    A: claim ---- lead: BEGIN; [A] COMMIT ........ result A
    B:   claim -- queue ............. lead: BEGIN; [B] [C] [D] COMMIT -- result B
    C:     claim  queue ......................................... ------ result C
    D:       claim  queue ....................................... ------ result D

No thread of its own: whichever caller finds no batch running leads the next one on its own
thread and connection (leader/follower), then hands the lead to the first caller still
queued. Each step `[X]` is the claim's request-fence check, its take (a seat claim's
conditional write, as `atomic`'s; a pool claim's units from counters the batch reads and
writes once, batch_pools.py) and its `finish` (charge, order, tickets). A step that raises is
rolled back to its savepoint and only its own caller gets the error: one buyer's empty
wallet, sold seat or taken group seat does not fail the others, and a group stays all or
nothing. If BEGIN, the pool counters' write or COMMIT fails, nobody in the batch succeeded:
every caller gets the store's error.

Batches of one event on several servers take turns: a batch first takes a transaction-scoped
lock on its event (`advisory_lock`; SQLite's write lock already is one). Without it two
batches can deadlock on rows of which a single sale locks only one, like revenue shards::

    batch 1: claim a credits revenue 3 ... claim b credits revenue 7 (waits)
    batch 2: claim c credits revenue 7 ... claim d credits revenue 3 (waits)   -> 40P01

The queue is bounded in length and in time: a claim that finds `max_queue` claims waiting,
or is not taken into a batch within `queue_timeout_s`, leaves with OverloadedError (503 and
Retry-After: nothing was done, a retry is safe); one taken waits for its batch, whose
statements are bounded by the store's lock and busy timeouts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, cast
from weakref import WeakKeyDictionary

from lastseat.concurrency.atomic import take_making_room
from lastseat.concurrency.base import StrategyBase, refusal
from lastseat.concurrency.batch_pools import PoolCounters, Reserve, StepTx
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.errors import OverloadedError, StoreError
from lastseat.domain.holds import Claim, PoolClaim
from lastseat.domain.money import Money
from lastseat.service.ports import InventoryTx, Pause, Stage, Store, no_pause
from lastseat.service.store_layer import StoreLayer

T = TypeVar("T")
MAX_BATCH = 64
MAX_QUEUE = 1_024
QUEUE_TIMEOUT_S = 10.0


Layer = Callable[[InventoryTx], AbstractContextManager[None]]


@dataclass(eq=False)
class _Job:
    """One caller's claim, waiting for its outcome (or for its turn to lead)."""

    store: Store  # the batch's store: under the claim's layers
    claim: Claim
    stage: Stage
    hold_id: str
    now: datetime
    finish: Callable[[InventoryTx], object]
    layers: list[Layer]  # outermost first
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    taken: bool = False
    done: bool = False
    value: object = None
    error: BaseException | None = None

    def settle(self, value: object = None, error: BaseException | None = None) -> None:
        self.value, self.error, self.done = value, error, True


class _NoRoomError(Exception):
    """A pool claim did not fit: expire the pool's lapsed holds, outside the step, and retry."""


class Batcher:
    """The queue of one event's claims on one store; callers take turns leading batches."""

    def __init__(
        self,
        run: Callable[[list[_Job]], None],
        max_batch: int,
        max_queue: int,
        queue_timeout_s: float,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue_timeout_s = queue_timeout_s
        self._mutex = threading.Lock()
        self._queue: deque[_Job] = deque()
        self._leading = False

    def queued(self) -> int:
        """Claims waiting for a batch (not counting the batch running now)."""
        with self._mutex:
            return len(self._queue)

    def submit(self, job: _Job) -> object:
        """Queue the claim, lead a batch when it is this caller's turn; its own outcome."""
        with self._mutex:
            if len(self._queue) >= self._max_queue:
                raise OverloadedError(
                    f"{self._max_queue} claims on this event are waiting for a batch; try again"
                )
            self._queue.append(job)
            if not self._leading:
                self._leading = job.leads = True
        if not job.leads:
            self._wait(job)
        if not job.done:
            self._lead()
        if job.error is not None:
            raise job.error
        return job.value

    def _wait(self, job: _Job) -> None:
        """Until the job is done or leads; give up only while it is still in the queue."""
        if job.ready.wait(self._queue_timeout_s):
            return
        with self._mutex:
            if not job.taken and not job.leads:
                self._queue.remove(job)
                raise OverloadedError(
                    f"the claim waited {self._queue_timeout_s:g} s for a batch; nothing was"
                    " done, try again"
                )
        job.ready.wait()  # in a batch now: its outcome is on the way

    def _lead(self) -> None:
        with self._mutex:
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
            for job in batch:
                job.taken = True
        try:
            self._run(batch)
        finally:
            for job in batch:
                if not job.done:
                    job.settle(error=StoreError("the batch ended without an outcome"))
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leading = False
                else:
                    successor.leads = True
            for job in batch:
                job.ready.set()
            if successor is not None:
                successor.ready.set()


class BatchedStrategy(StrategyBase):
    """Claims on one event coalesced into one transaction per batch; one outcome per buyer."""

    name = "batched"

    def __init__(
        self,
        pause: Pause = no_pause,
        retry: RetryPolicy | None = None,
        *,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        queue_timeout_s: float = QUEUE_TIMEOUT_S,
    ) -> None:
        super().__init__(pause, retry)
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self._batchers: WeakKeyDictionary[Store, dict[str, Batcher]] = WeakKeyDictionary()
        self._batchers_lock = threading.Lock()

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Queue the claim for the event's next batch; this buyer's own result or error."""
        self._stats.add(attempts=1)
        unwrapped = layers_of(store)
        if unwrapped is None:  # a wrapper that cannot join a batch: a transaction of its own
            job = _Job(store, claim, stage, hold_id, now, finish, [])
            return cast(T, self._alone(job))
        base, layers = unwrapped
        job = _Job(base, claim, stage, hold_id, now, finish, layers)
        try:
            return cast(T, self.batcher(base, claim.event_id).submit(job))
        except OverloadedError:
            if job.taken:  # a batch's own error, not the queue's refusal
                raise
            self._stats.add(overloaded=1)
            raise

    def _alone(self, job: _Job) -> object:
        self._stats.add_batch(1)
        with job.store.write(self._stats) as tx:
            self._step(cast(StepTx, tx), job, None)
            if job.error is not None:
                raise job.error
            return job.value

    def batcher(self, store: Store, event_id: str) -> Batcher:
        """The queue of claims on `event_id` through `store` (made on first use)."""
        with self._batchers_lock:
            per_event = self._batchers.setdefault(store, {})
            if event_id not in per_event:
                # The batcher must not hold the store: it is the key of a weak mapping.
                per_event[event_id] = Batcher(
                    lambda jobs: self._run(jobs[0].claim.event_id, jobs),
                    self.max_batch,
                    self.max_queue,
                    self.queue_timeout_s,
                )
            return per_event[event_id]

    def _run(self, event_id: str, jobs: list[_Job]) -> None:
        """One transaction for the batch, one savepoint per claim, one COMMIT."""
        self._stats.add_batch(len(jobs))
        try:
            with jobs[0].store.write(self._stats) as opened:
                tx = cast(StepTx, opened)
                tx.advisory_lock([f"batch:{event_id}"])
                pools = PoolCounters(tx, [job.claim for job in jobs])
                view = cast(StepTx, _PricedOnce(tx))
                for job in jobs:
                    self._step(view, job, pools)
                pools.write()
        except Exception as exc:  # BEGIN or COMMIT failed: nothing of the batch was kept
            for job in jobs:
                if job.error is None:
                    job.settle(error=_copy_of(exc))

    def _step(self, tx: StepTx, job: _Job, pools: PoolCounters | None) -> None:
        try:
            try:
                self._attempt(tx, job, pools, last=False)
            except _NoRoomError:
                assert pools is not None
                assert isinstance(job.claim, PoolClaim)
                pools.make_room(job.claim, job.now)
                self._attempt(tx, job, pools, last=True)
        except Exception as exc:
            job.settle(error=exc)

    def _attempt(self, tx: StepTx, job: _Job, pools: PoolCounters | None, *, last: bool) -> None:
        if pools is None or not isinstance(job.claim, PoolClaim):
            with tx.savepoint():
                job.settle(self._sell(tx, job, None, last=last))
            return
        with pools.reserving() as reserve, tx.savepoint():
            job.settle(self._sell(tx, job, reserve, last=last))

    def _sell(self, tx: InventoryTx, job: _Job, reserve: Reserve | None, *, last: bool) -> object:
        """The claim's layers (its request fence, its price), its take and its finish. A pool
        claim takes units the batch reads and writes once (batch_pools); a seat claim writes
        them conditionally, with lapsed holds looked for only if it comes up short."""
        with ExitStack() as layers:
            for layer in reversed(job.layers):  # innermost first, as their own writes would
                layers.enter_context(layer(tx))
            claim = job.claim
            if reserve is not None and isinstance(claim, PoolClaim):
                if not reserve(claim, job.stage):
                    raise refusal(tx, claim) if last else _NoRoomError
            elif not take_making_room(tx, claim, job.hold_id, job.stage, job.now):
                raise refusal(tx, claim)
            self.pause()
            return job.finish(tx)


class _PricedOnce:
    """The batch's transaction as its claims' steps see it: a price read once per batch.

    Prices never change once an event is created (service/pricing.py), and the claims of a
    hot batch mostly name the same thing (one pool, one quantity), so each claim's price read
    after the first costs no round trip. Everything else goes to the transaction itself.
    """

    def __init__(self, tx: StepTx) -> None:
        self._tx = tx
        self._prices: dict[Claim, Money] = {}

    def price_of(self, claim: Claim) -> Money:
        if claim not in self._prices:
            self._prices[claim] = self._tx.price_of(claim)
        return self._prices[claim]

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)


def _copy_of(exc: Exception) -> Exception:
    """The same error for one more caller (each raises its own object), caused by `exc`."""
    clone = Exception.__new__(type(exc), *exc.args)  # its __init__ may want other arguments
    clone.__dict__.update(exc.__dict__)
    clone.__cause__ = exc
    return clone


def layers_of(store: Store) -> tuple[Store, list[Layer]] | None:
    """The store under a claim's wrappers, and what each wrapper does to a transaction
    (outermost first); None if a wrapper cannot do its part to a transaction it did not open
    (it has an `inner` store but no `within`)."""
    layers: list[Layer] = []
    while isinstance(store, StoreLayer):  # the request's fence, the claim's price, ...
        layers.append(store.within)
        store = store.inner
    if hasattr(store, "inner"):
        return None
    return store, layers
