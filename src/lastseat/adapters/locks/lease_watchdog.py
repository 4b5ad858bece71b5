"""A daemon thread that keeps leased locks alive and tells their holders when it cannot.

Without it a holder whose work outlives the TTL loses the lock silently::

    A: acquire(seat 7, ttl 10 s) -> token 33;  A: slow work, 12 s
    (10 s) the lock expires;  B: acquire(seat 7) -> token 34
    A: still believes it holds seat 7

The watchdog extends each watched grant every ttl/3. When an extend is refused (the lock
expired or belongs to someone else) or the service cannot be reached, it sets `grant.lost`
at once and counts it: it reports the loss, it never swallows it and never dies silently (an
unexpected error marks the grant lost too). Being told is advice, not safety: the holder may
be paused when it happens, which is why storage checks fencing tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lastseat.service.locking import Grant

log = logging.getLogger(__name__)


@dataclass
class _Lease:
    grant: Grant
    due: float  # time.monotonic() of the next extend


class LeaseWatchdog:
    """Extend every watched grant at a third of its TTL; on failure mark it lost."""

    def __init__(
        self, extend: Callable[[Grant], bool], on_lost: Callable[[Grant], None], name: str
    ) -> None:
        self._extend = extend
        self._on_lost = on_lost
        self._name = name
        self._leases: dict[str, _Lease] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def watch(self, grant: Grant) -> None:
        """Start keeping the grant alive until `forget` or loss."""
        with self._changed:
            if self._closed:
                return
            self._leases[grant.owner] = _Lease(grant, time.monotonic() + _period_s(grant))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-watchdog", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def forget(self, grant: Grant) -> None:
        """Stop extending the grant (it is being released)."""
        with self._changed:
            self._leases.pop(grant.owner, None)

    def close(self) -> None:
        """Stop the thread; watched grants are no longer extended."""
        with self._changed:
            self._closed = True
            self._leases.clear()
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            due = self._next_due()
            if due is None:
                return
            for lease in due:
                self._keep(lease)

    def _next_due(self) -> list[_Lease] | None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                due = [lease for lease in self._leases.values() if lease.due <= now]
                if due:
                    return due
                wake = min((lease.due for lease in self._leases.values()), default=now + 1.0)
                self._changed.wait(wake - now)
            return None

    def _keep(self, lease: _Lease) -> None:
        try:
            kept = self._extend(lease.grant)
        except Exception:  # any failure means we can no longer vouch for the lock
            log.warning("could not extend the lock on %s", lease.grant.resource, exc_info=True)
            kept = False
        with self._changed:
            if self._leases.get(lease.grant.owner) is not lease:
                return  # released (or closed) while the extend was in flight
            if kept:
                lease.due = time.monotonic() + _period_s(lease.grant)
                return
            del self._leases[lease.grant.owner]
        lease.grant.lost.set()
        self._on_lost(lease.grant)


def _period_s(grant: Grant) -> float:
    return max(grant.ttl_ms, 3) / 3 / 1000
