"""Process entry points for the lock fault tests (importable by spawned children)."""

from __future__ import annotations

from typing import Any

from lastseat.adapters.locks.redis_lock import RedisLockManager
from lastseat.adapters.locks.redlock import RedlockManager
from lastseat.adapters.locks.zookeeper_lock import ZooKeeperLockManager
from lastseat.bootstrap import open_store
from lastseat.concurrency.advisory import AdvisoryLockStrategy
from lastseat.concurrency.locked import DistributedLockStrategy
from lastseat.domain.errors import LastseatError
from lastseat.domain.holds import SeatClaim
from lastseat.service.booking import BookingService
from lastseat.service.locking import LockManager
from lastseat.service.ports import ClaimStrategy, Pause, no_pause

SEAT = "ev/A/0001/0001"
LOCK_TTL_MS = 1_500


def lock_manager(kind: str, address: str) -> LockManager:
    """A lock manager of `kind` connected to `address` (URL(s) or hosts)."""
    if kind == "redis-lock":
        return RedisLockManager(address)
    if kind == "redlock":
        return RedlockManager(address.split(","))
    return ZooKeeperLockManager(address, session_timeout_s=1.0)


def _strategy(kind: str, address: str, pause: Pause, fencing: bool) -> ClaimStrategy:
    if kind == "pg-advisory":
        return AdvisoryLockStrategy(pause)
    return DistributedLockStrategy(
        kind,
        lock_manager(kind, address),
        pause,
        ttl_ms=LOCK_TTL_MS,
        acquire_timeout_s=60.0,
        fencing=fencing,
    )


def buy(
    db: str,
    kind: str,
    address: str,
    buyer: str,
    fencing: bool,
    reached: Any,
    resume: Any,
    outcome: Any,
) -> None:
    """Buy the seat; with `reached`/`resume`, stop between check and write until resumed."""

    def hook() -> None:
        reached.set()
        # A pipe, not an Event: Event.set() waits for its sleepers to wake, and this sleeper
        # is about to be SIGSTOPped; a pipe write just lands in the buffer.
        if resume.poll(120):
            resume.recv()

    pause = hook if reached is not None else no_pause
    store = open_store(db, create=False)
    strategy = _strategy(kind, address, pause, fencing)
    try:
        BookingService(store, strategy).quick_buy(buyer, SeatClaim("ev", (SEAT,)))
        outcome.put((buyer, "ok", strategy.statistics().fenced_out))
    except LastseatError as exc:
        outcome.put((buyer, type(exc).__name__, strategy.statistics().fenced_out))
    finally:
        store.close()
