"""Counters every strategy reports (DESIGN.md §5): attempts, conflicts, retries, lock waits;
`batched` also counts its batches, the claims in them and the largest batch."""

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
    overloaded: int = 0  # claims an admission gate refused (concurrency/admission.py)
    batches: int = 0
    batched_claims: int = 0
    max_batch: int = 0
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to named counters atomically with respect to other threads."""
        with self._mutex:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def add_batch(self, size: int) -> None:
        """Count one batch of `size` claims committed (or failed) together."""
        with self._mutex:
            self.batches += 1
            self.batched_claims += size
            self.max_batch = max(self.max_batch, size)

    @property
    def mean_batch(self) -> float:
        """Claims per batch on average (0 before the first batch)."""
        return self.batched_claims / self.batches if self.batches else 0.0

    def as_dict(self) -> dict[str, int]:
        """Plain counters, e.g. to send between processes or print as JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def merged(cls, parts: list[dict[str, int]]) -> StrategyStatistics:
        """One set of counters from several `as_dict()` results."""
        total = cls()
        for part in parts:
            total.add(**{name: value for name, value in part.items() if name not in _MAXIMA})
            for name in _MAXIMA:
                setattr(total, name, max(getattr(total, name), part.get(name, 0)))
        return total


# Counters that merge as the largest of the parts, not their sum.
_MAXIMA = ("max_batch",)
