"""A per-process, short-TTL cache of event availability for the read endpoints.

Many servers each keep their own copy, so a read may be up to one TTL stale; writes never
consult it (the database's conditional writes are the truth). A write made by this process
drops the event's entry, so a single server reads its own writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lastseat.service.ports import Availability

MAX_ENTRIES = 1024


class AvailabilityCache:
    """Availability by event id, each entry kept for `ttl_ms` (0 disables the cache)."""

    def __init__(self, ttl_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_ms / 1000
        self._clock = clock
        self._entries: dict[str, tuple[float, Availability]] = {}
        self._mutex = threading.Lock()

    def get(self, event_id: str, load: Callable[[], Availability]) -> Availability:
        """The cached availability of an event, or a fresh one from `load`."""
        if self.ttl_s <= 0:
            return load()
        now = self._clock()
        with self._mutex:
            entry = self._entries.get(event_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        # Loaded outside the mutex: a slow read must not stall readers of other events.
        found = load()
        with self._mutex:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[event_id] = (now + self.ttl_s, found)
        return found

    def forget(self, event_id: str) -> None:
        """Drop an event's entry after this process changed it."""
        with self._mutex:
            self._entries.pop(event_id, None)
