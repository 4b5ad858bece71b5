"""Admission control: at most `in_flight` claims per hot resource run at once in one process,
at most `queue` more wait their turn, and any further claim is refused at once.

A hot resource is the row the claims queue on: a GA pool's counter, or a seat (a group's
first seat in lock order). Best-available claims pass ungated: they have no such row, as each
looks for free seats from a random start and `row-lock-skip-locked` never waits for a locked
seat, so a bound would only throttle buyers who do not collide. Without the gate every
buyer of a hot pool holds a connection and a transaction while it waits in the database's lock
queue, the lock manager picks who goes next (so some wait far longer than others), and one
row commits fewer sales the more connections contend for it (DESIGN.md §9: ~7,500/s from 1-4
connections, ~2,200/s from 64). The gate keeps the crowd out of the database:

    no gate, 64 buyers of pool P             gate: in_flight 4, queue 8
    conn 1   UPDATE P ... COMMIT             claims 1-4   UPDATE P ... COMMIT   (in the db)
    conn 2   UPDATE P  waits on P's lock     claims 5-12  wait here, in arrival order, with
    ...                                                   no connection and no transaction
    conn 64  UPDATE P  waits on P's lock     claim 13     OverloadedError: 503 overloaded +
                                                          Retry-After; nothing was written

A refused claim never reached the store, so it left nothing behind and retrying it (with the
same Idempotency-Key) is safe. A finished claim hands its place straight to the longest
waiter, so a newcomer cannot overtake the queue. The bound is per process: N servers let
N x in_flight claims reach one row. `in_flight = 0` turns the gate off.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from lastseat.domain.errors import OverloadedError, ValidationError
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim, SectionClaim
from lastseat.service.ports import ClaimStrategy, InventoryTx, Stage, Store
from lastseat.service.statistics import StrategyStatistics

T = TypeVar("T")

# Measured with `lastseat race --scenario ga --db postgres`, 64 buyers (issue 9, loaded
# machine, medians of 3): over 2 servers 8 in flight gave 391 purchases/s, p99 342 ms, against
# 359/s and 690 ms ungated; in-process (4 processes) 2 did best, 8 matched no gate. The best
# is about 8-16 claims on the row in all. The queue is longer than a server's 40 request
# threads, so over HTTP it orders claims and refuses only callers beyond those.
DEFAULT_CLAIMS_IN_FLIGHT = 8
DEFAULT_CLAIM_QUEUE = 64
MAX_CLAIMS_IN_FLIGHT = 1_000
MAX_CLAIM_QUEUE = 100_000
# Coalescing strategies bound their own transactions (a batch is one); the unguarded one
# shows the race without a net, so a gate must not thin out its collisions.
UNGATED_STRATEGIES = frozenset({"batched", "naive"})
CLAIMS_IN_FLIGHT_ENV = "LASTSEAT_CLAIMS_IN_FLIGHT"
CLAIM_QUEUE_ENV = "LASTSEAT_CLAIM_QUEUE"


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """Per hot resource and per process: claims running at once (0: no gate), claims waiting."""

    in_flight: int = DEFAULT_CLAIMS_IN_FLIGHT
    queue: int = DEFAULT_CLAIM_QUEUE

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AdmissionLimits:
        """The limits LASTSEAT_CLAIMS_IN_FLIGHT and LASTSEAT_CLAIM_QUEUE name, else the defaults;
        ValidationError naming the variable that is not a whole number in range."""
        return cls(
            _whole(environ, CLAIMS_IN_FLIGHT_ENV, DEFAULT_CLAIMS_IN_FLIGHT, MAX_CLAIMS_IN_FLIGHT),
            _whole(environ, CLAIM_QUEUE_ENV, DEFAULT_CLAIM_QUEUE, MAX_CLAIM_QUEUE),
        )

    @property
    def enabled(self) -> bool:
        """Whether claims pass a gate at all."""
        return self.in_flight > 0

    def validated(self) -> AdmissionLimits:
        """These limits, or ValidationError naming the bad one."""
        if not 0 <= self.in_flight <= MAX_CLAIMS_IN_FLIGHT:
            raise ValidationError(f"claims in flight must be 0..{MAX_CLAIMS_IN_FLIGHT}")
        if not 0 <= self.queue <= MAX_CLAIM_QUEUE:
            raise ValidationError(f"the claim queue must be 0..{MAX_CLAIM_QUEUE}")
        return self


def _whole(environ: Mapping[str, str], name: str, default: int, most: int) -> int:
    text = (environ.get(name) or str(default)).strip()
    if not text.isdigit() or int(text) > most:
        raise ValidationError(f"{name} must be a whole number 0..{most}")
    return int(text)


@dataclass(frozen=True, slots=True)
class GateStatistics:
    """Claims admitted at once, admitted after waiting, refused; running and waiting now."""

    admitted: int
    queued: int
    refused: int
    running: int
    waiting: int


@dataclass(slots=True)
class _Resource:
    running: int = 0
    waiting: deque[threading.Event] = field(default_factory=deque)


class ClaimGate:
    """Bounded claims in flight and a bounded FIFO queue per resource key; thread-safe."""

    def __init__(self, limits: AdmissionLimits) -> None:
        if not limits.validated().enabled:
            raise ValidationError("a gate lets at least one claim in flight; 0 means no gate")
        self.limits = limits
        self._mutex = threading.Lock()
        self._resources: dict[str, _Resource] = {}
        self._admitted = self._queued = self._refused = 0

    @contextmanager
    def admitted(self, key: str) -> Iterator[None]:
        """Run the block as one of `key`'s claims in flight (see `enter`)."""
        self.enter(key)
        try:
            yield
        finally:
            self.leave(key)

    def statistics(self) -> GateStatistics:
        """The counters since this gate was made, and its occupancy now."""
        with self._mutex:
            running = sum(r.running for r in self._resources.values())
            waiting = sum(len(r.waiting) for r in self._resources.values())
            return GateStatistics(self._admitted, self._queued, self._refused, running, waiting)

    def enter(self, key: str) -> None:
        """Take one of `key`'s places in flight, waiting in line for it if need be;
        OverloadedError at once if the line is full. Pair with `leave`."""
        with self._mutex:
            resource = self._resources.setdefault(key, _Resource())
            if resource.running < self.limits.in_flight and not resource.waiting:
                resource.running += 1
                self._admitted += 1
                return
            if len(resource.waiting) >= self.limits.queue:
                self._refused += 1
                raise OverloadedError(
                    f"{resource.running} claims on {key} running and {len(resource.waiting)}"
                    " waiting in this process; refused"
                )
            turn = threading.Event()
            resource.waiting.append(turn)
            self._queued += 1
        try:
            turn.wait()
        except BaseException:
            self._give_up(key, turn)
            raise

    def _give_up(self, key: str, turn: threading.Event) -> None:
        """A waiter interrupted: leave the queue, or pass on the place handed to it."""
        with self._mutex:
            resource = self._resources[key]
            if turn in resource.waiting:
                resource.waiting.remove(turn)
                return
        self.leave(key)

    def leave(self, key: str) -> None:
        """Give back a place taken by `enter`: to the longest waiter, if any."""
        with self._mutex:
            resource = self._resources[key]
            if resource.waiting:
                resource.waiting.popleft().set()  # its place passes on: running stays
                return
            resource.running -= 1
            if resource.running == 0:
                del self._resources[key]


def hot_resource(claim: Claim) -> str:
    """The key a claim queues under: the row it waits on first in the database."""
    if isinstance(claim, PoolClaim):
        return f"pool:{claim.pool_id}"
    return f"seat:{claim.seat_ids[0]}"  # seats are locked ascending: this one first


class GatedStrategy:
    """A claim strategy whose claims pass a ClaimGate first; reports as the strategy it wraps."""

    def __init__(self, inner: ClaimStrategy, gate: ClaimGate) -> None:
        self.inner = inner
        self.gate = gate
        self.name = inner.name
        self.guarded = inner.guarded

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """The inner strategy's claim, once the gate admits it."""
        with self._admitted(claim):
            return self.inner.claim(store, claim, stage, hold_id, now, finish)

    def claim_section(
        self,
        store: Store,
        claim: SectionClaim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx, SeatClaim], T],
    ) -> T:
        """The inner strategy's best-available claim, ungated (see the module's note)."""
        return self.inner.claim_section(store, claim, stage, hold_id, now, finish)

    def statistics(self) -> StrategyStatistics:
        """The inner strategy's counters, with the claims the gate refused as `overloaded`."""
        return self.inner.statistics()

    @contextmanager
    def _admitted(self, claim: Claim) -> Iterator[None]:
        key = hot_resource(claim)
        try:
            self.gate.enter(key)
        except OverloadedError:
            self.inner.statistics().add(overloaded=1)
            raise
        try:
            yield
        finally:
            self.gate.leave(key)


def gated(strategy: ClaimStrategy, limits: AdmissionLimits) -> ClaimStrategy:
    """`strategy` behind a gate with these limits, or as it is if the gate is off or needless."""
    if not limits.validated().enabled or strategy.name in UNGATED_STRATEGIES:
        return strategy
    return GatedStrategy(strategy, ClaimGate(limits))
