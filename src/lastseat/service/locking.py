"""The lock-manager port: a global referee between app servers, with fencing tokens.

A lock alone is not safe. A holder can pause (GC, SIGSTOP, a slow network) past its TTL or
session timeout while still believing it holds the lock::

    A: acquire(seat 7) -> token 33
    A: ... paused past the TTL ...
    B: acquire(seat 7) -> token 34;  B: write seat 7 with token 34; commit
    A: (wakes) write seat 7 with token 33        # a second sale, unless storage refuses it

So every grant carries a fencing token that grows per resource, every lock-guarded write
carries it, and storage refuses a token lower than the highest it has seen for that resource
(`InventoryTx.check_fence`). A holder can also learn that its lock is lost (`Grant.lost`), but
that is advice: only storage-side fencing keeps the data safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Grant:
    """One held lock: the resource, the fencing token issued with it, the owner's secret."""

    resource: str
    token: int
    owner: str
    ttl_ms: int
    lost: threading.Event = field(default_factory=threading.Event, compare=False)

    def is_lost(self) -> bool:
        """True once the holder has learned the lock is gone (expired, session lost)."""
        return self.lost.is_set()


@dataclass
class LockStatistics:
    """Counters every lock manager reports (trio style: `statistics()`)."""

    acquired: int = 0
    waits: int = 0
    wait_ns: int = 0
    timeouts: int = 0
    released: int = 0
    release_not_owner: int = 0
    extended: int = 0
    lost: int = 0
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to named counters atomically with respect to other threads."""
        with self._mutex:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        """Plain counters."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class LockManager(Protocol):
    """Mutual exclusion on named resources across processes and machines.

    `acquire` raises `LockTimeoutError` when `timeout_s` passes and `LockServiceError` when
    the lock service cannot be reached; `acquire_nowait` returns None if the lock is held.
    `release` and `extend` return False when the caller no longer owns the lock (it expired
    and maybe someone else holds it now) and never touch another owner's lock.
    """

    name: str

    def acquire(self, resource: str, ttl_ms: int, timeout_s: float) -> Grant: ...
    def acquire_nowait(self, resource: str, ttl_ms: int) -> Grant | None: ...
    def release(self, grant: Grant) -> bool: ...
    def extend(self, grant: Grant, ttl_ms: int) -> bool: ...
    def statistics(self) -> LockStatistics: ...
    def close(self) -> None: ...
