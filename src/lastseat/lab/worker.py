"""One race worker: a real OS process whose threads are concurrent buyers.

Each worker opens its own store (its own connections), waits on a barrier shared with every
other worker so that the race starts at one moment, and records every attempt as history.
History lines are kept in memory during the race and written once at the end, so file I/O
does not shape the interleavings being measured.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from lastseat.bootstrap import LockServices, build, open_store
from lastseat.concurrency.admission import AdmissionLimits
from lastseat.domain.errors import (
    ConflictError,
    InsufficientFundsError,
    LastseatError,
    NotFoundError,
    StoreBusyError,
    StoreError,
    UnavailableError,
)
from lastseat.domain.holds import ClaimRequest, PoolClaim, SeatClaim
from lastseat.lab.checker import REFUND_ACTION
from lastseat.lab.client_buyer import Answer, ClientBuyer
from lastseat.lab.history import (
    BUY_ACTION,
    HOLD_ACTION,
    RESEND_ACTION,
    Operation,
    OpType,
    write_history,
)
from lastseat.lab.mixed import Desk, play_session
from lastseat.lab.scenarios import BuyerPlan
from lastseat.lab.service_desk import ServiceDesk
from lastseat.service.booking import BookingService
from lastseat.service.ports import Pause, no_pause

BARRIER_TIMEOUT_S = 120.0

# Errors after which the buyer's transaction is known to have rolled back: a definite failure.
_KNOWN_FAILURES: dict[type[LastseatError], str] = {
    UnavailableError: "unavailable",
    InsufficientFundsError: "insufficient_funds",
    ConflictError: "conflict",
    StoreBusyError: "busy",
    NotFoundError: "not_found",
}


@dataclass(frozen=True, slots=True)
class WorkerJob:
    """Everything a worker process needs, picklable."""

    index: int
    db_path: str
    strategy: str
    plans: list[BuyerPlan]
    threads: int
    payment_delay_ms: float
    history_path: str
    synchronous: str
    servers: tuple[str, ...] = ()
    token_secret: bytes = b""
    locks: LockServices = field(default_factory=LockServices)
    resend_rate: float = 0.0  # over HTTP: the share of purchases sent twice with one key
    cancel_rate: float = 0.0  # over HTTP: the share of bought orders cancelled (refunded)
    seed: int = 1


@dataclass(slots=True)
class WorkerResult:
    """What a worker reports back to the runner."""

    statistics: dict[str, int]
    latencies_ns: list[int] = field(default_factory=list)
    started_ns: int = 0
    finished_ns: int = 0


def run_worker(job: WorkerJob, barrier: Any, progress: Any) -> WorkerResult:
    """Process entry point: race the job's buyers, write history, return counters."""
    store = open_store(job.db_path, create=False, synchronous=job.synchronous)
    # Over HTTP the servers sell; this process only needs a store for nothing but its build.
    strategy = "atomic" if job.servers else job.strategy
    # In-process buyers pass the admission gate a server would (same defaults, same variables).
    services = build(
        store,
        strategy,
        allow_unsafe=True,
        pause=_pause_for(job),
        locks=job.locks,
        admission=AdmissionLimits.from_env(os.environ),
    )
    http = (
        ClientBuyer(
            job.servers,
            job.token_secret,
            resend_rate=job.resend_rate,
            cancel_rate=job.cancel_rate,
            seed=job.seed + job.index,
        )
        if job.servers
        else None
    )
    recorder = Recorder(job.index)
    next_buyer = iter(enumerate(job.plans))
    take_lock = threading.Lock()
    desk: Desk = http if http is not None else ServiceDesk(services)

    def buyer_loop() -> None:
        while True:
            with take_lock:
                index, plan = next(next_buyer, (0, None))
            if plan is None:
                return
            if plan.steps:
                play_session(plan, desk, recorder.record, index, lambda: str(uuid.uuid4()))
            elif http is not None:
                recorder.attempt_http(plan, index, http)
            else:
                recorder.attempt(plan, functools.partial(_buy, services.booking, plan))
            with progress.get_lock():
                progress.value += 1

    barrier.wait(timeout=BARRIER_TIMEOUT_S)
    started = time.monotonic_ns()
    with ThreadPoolExecutor(job.threads) as pool:
        for future in [pool.submit(buyer_loop) for _ in range(job.threads)]:
            future.result()
    finished = time.monotonic_ns()
    if http is not None:
        http.close()
    write_history(Path(job.history_path), recorder.operations)
    # Over HTTP the strategy runs in the servers; their counters are on their /metrics.
    stats = services.booking.strategy.statistics().as_dict()
    store.close()
    return WorkerResult(stats, recorder.latencies_ns, started, finished)


def _pause_for(job: WorkerJob) -> Pause:
    if job.payment_delay_ms <= 0:
        return no_pause
    delay_s = job.payment_delay_ms / 1000

    def take_money() -> None:
        time.sleep(delay_s)  # the payment provider's latency, between check and mark-sold

    return take_money


def _buy(booking: BookingService, plan: BuyerPlan) -> tuple[str, tuple[str, ...]]:
    purchase = booking.quick_buy(plan.buyer_id, plan.claim)
    return purchase.order.order_id, tuple(t.code for t in purchase.tickets)


class Recorder:
    """Thread-safe history of one worker."""

    def __init__(self, process: int) -> None:
        self.process = process
        self.operations: list[Operation] = []
        self.latencies_ns: list[int] = []
        self._lock = threading.Lock()
        self._seq = 0

    def attempt(self, plan: BuyerPlan, buy: Callable[[], tuple[str, tuple[str, ...]]]) -> None:
        op_id = self._next_id()
        self._add("invoke", op_id, plan)
        started = time.monotonic_ns()
        try:
            order_id, codes = buy()
        except LastseatError as exc:
            kind, error = _classify(exc)
            self._add(kind, op_id, plan, error=error)
        except Exception as exc:
            self._add("info", op_id, plan, error=f"{type(exc).__name__}: {exc}")
        else:
            self._add("ok", op_id, plan, order_id=order_id, codes=codes)
        with self._lock:
            self.latencies_ns.append(time.monotonic_ns() - started)

    def attempt_http(self, plan: BuyerPlan, index: int, http: ClientBuyer) -> None:
        """One purchase over HTTP with a fresh Idempotency-Key; maybe sent again with it."""
        key = str(uuid.uuid4())
        started = time.monotonic_ns()
        bought = self._record(
            plan, BUY_ACTION, key, lambda: http.buy(index, plan.buyer_id, plan.claim, key)
        )
        with self._lock:
            self.latencies_ns.append(time.monotonic_ns() - started)
        if http.should_resend():
            self._record(
                plan, RESEND_ACTION, key, lambda: http.resend(index, plan.buyer_id, plan.claim, key)
            )
        order_id = bought.order_id
        if bought.kind == "ok" and order_id is not None and http.should_cancel():
            cancel_key = str(uuid.uuid4())
            self._record(
                plan,
                REFUND_ACTION,
                cancel_key,
                lambda: http.cancel(index, plan.buyer_id, order_id, cancel_key),
            )

    def _record(self, plan: BuyerPlan, action: str, key: str, send: Callable[[], Answer]) -> Answer:
        op_id = self._next_id()
        self._add("invoke", op_id, plan, action=action, key=key)
        answer = send()
        self._add(
            cast(OpType, answer.kind),
            op_id,
            plan,
            action=action,
            key=key,
            error=answer.error,
            order_id=answer.order_id,
            codes=answer.codes,
            status=answer.status,
            digest=answer.digest,
            replayed=answer.replayed,
        )
        return answer

    def record(
        self,
        plan: BuyerPlan,
        action: str,
        send: Callable[[], Answer],
        *,
        key: str | None = None,
        claim: ClaimRequest | None = None,
        hold: Answer | None = None,
        order_id: str | None = None,
        resent: str | None = None,
    ) -> Answer:
        """One request of a mixed session: its invoke, then its answer (`mixed.Record`)."""
        op_id = self._next_id()
        asked = _asked(claim, hold)
        invoke = Operation(
            "invoke",
            op_id,
            self.process,
            plan.buyer_id,
            time.monotonic_ns(),
            action,
            asked.seat_ids,
            asked.pool_id,
            asked.quantity,
            order_id,
            idempotency_key=key,
            hold_id=asked.hold_id,
            resent=resent,
        )
        with self._lock:
            self.operations.append(invoke)
        started = time.monotonic_ns()
        answer = send()
        finished = time.monotonic_ns()
        told = _told_claim(action if resent is None else resent, asked, answer)
        done = replace(
            invoke,
            type=cast(OpType, answer.kind),
            time_ns=finished,
            seat_ids=told.seat_ids,
            pool_id=told.pool_id,
            quantity=told.quantity,
            order_id=answer.order_id or order_id,
            ticket_codes=answer.codes,
            error=answer.error,
            status=answer.status,
            digest=answer.digest,
            replayed=answer.replayed,
            hold_id=answer.hold_id or asked.hold_id,
            told=answer.told,
        )
        with self._lock:
            self.operations.append(done)
            self.latencies_ns.append(finished - started)
        return answer

    def _next_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"p{self.process}-{self._seq}"

    def _add(
        self,
        kind: OpType,
        op_id: str,
        plan: BuyerPlan,
        *,
        error: str | None = None,
        order_id: str | None = None,
        codes: tuple[str, ...] = (),
        action: str = BUY_ACTION,
        key: str | None = None,
        status: int | None = None,
        digest: str | None = None,
        replayed: bool = False,
    ) -> None:
        claim = plan.claim
        seat_ids = claim.seat_ids if isinstance(claim, SeatClaim) else ()
        pool_id = None if isinstance(claim, SeatClaim) else claim.pool_id
        op = Operation(
            kind,
            op_id,
            self.process,
            plan.buyer_id,
            time.monotonic_ns(),
            action,
            seat_ids,
            pool_id,
            claim.quantity,
            order_id,
            codes,
            error,
            key,
            status,
            digest,
            replayed,
        )
        with self._lock:
            self.operations.append(op)


@dataclass(frozen=True, slots=True)
class _Asked:
    """The inventory one request is about, and the hold it names."""

    seat_ids: tuple[str, ...] = ()
    pool_id: str | None = None
    quantity: int = 0
    hold_id: str | None = None


def _asked(claim: ClaimRequest | None, hold: Answer | None) -> _Asked:
    if hold is not None:
        return _Asked(hold.seat_ids, hold.pool_id, hold.quantity, hold.hold_id)
    if isinstance(claim, SeatClaim):
        return _Asked(claim.seat_ids, None, claim.quantity)
    if isinstance(claim, PoolClaim):
        return _Asked((), claim.pool_id, claim.quantity)
    return _Asked((), None, claim.quantity if claim is not None else 0)


def _told_claim(action: str, asked: _Asked, answer: Answer) -> _Asked:
    """What the completion records as claimed: what was asked, or for a best-available
    claim the seats the answer named. Cancels and reads claim nothing."""
    if action not in (BUY_ACTION, HOLD_ACTION) and asked.hold_id is None:
        return _Asked()
    if asked.seat_ids or asked.pool_id:
        return asked
    return _Asked(answer.seat_ids, answer.pool_id, answer.quantity or asked.quantity)


def _classify(exc: LastseatError) -> tuple[OpType, str]:
    for error_type, name in _KNOWN_FAILURES.items():
        if isinstance(exc, error_type):
            return "fail", name
    if isinstance(exc, StoreError):
        return "info", f"store: {exc}"  # e.g. an I/O error at COMMIT: outcome unknown
    return "fail", type(exc).__name__
