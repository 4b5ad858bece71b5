"""Counters every strategy reports (DESIGN.md §5): attempts, conflicts, retries, lock waits."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class StrategyStatistics:
    """Thread-safe counters; `merged` adds up the counters of several processes."""

    attempts: int = 0
    conflicts: int = 0
    retries: int = 0
    lock_waits: int = 0
    lock_wait_ns: int = 0
    lock_held_ns: int = 0
    fenced_out: int = 0
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to named counters atomically with respect to other threads."""
        with self._mutex:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        """Plain counters, e.g. to send between processes or print as JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def merged(cls, parts: list[dict[str, int]]) -> StrategyStatistics:
        """One set of counters from several `as_dict()` results."""
        total = cls()
        for part in parts:
            total.add(**part)
        return total
