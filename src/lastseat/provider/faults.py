"""Fault injection: what makes the simulated card processor slow, down, or silent.

One `Faults` object per process holds the configuration (set by CLI flags, changed at runtime by
`PUT /_faults`), a seeded RNG for the random decisions, the current outage window, and the
counters of faults *actually injected*. A decision is counted only once it took effect: a
decline rolled for a request whose key was already stored is not a decline.

Decisions are made on the event loop; the lock only guards against a reader of `/_faults`
(or a threadpool worker) seeing a half-updated counter dict.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

DECLINE_CODES = ("card_declined", "insufficient_funds", "do_not_honor", "expired_card")
DEFAULT_HANG_MS = 30_000
COUNTER_NAMES = (
    "requests",
    "delayed",
    "slow",
    "declined",
    "outage_503",
    "refused_windows",
    "refused_connections_closed",
    "capture_then_timeout",
    "replay_then_timeout",
)


class OutageMode(enum.StrEnum):
    """How the provider is down: answering 503, or refusing TCP connections outright."""

    HTTP_503 = "503"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """The fault knobs; rates are probabilities in [0, 1], times in milliseconds."""

    latency_ms: float = 0.0
    latency_sigma: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 2_000.0
    decline_rate: float = 0.0
    capture_timeout_rate: float = 0.0
    hang_ms: float = DEFAULT_HANG_MS

    def validate(self) -> FaultConfig:
        """Return self, or raise ValueError naming the first bad knob."""
        for name in ("slow_rate", "decline_rate", "capture_timeout_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("latency_ms", "latency_sigma", "slow_ms", "hang_ms"):
            value = getattr(self, name)
            if not 0.0 <= value <= 3_600_000 or math.isnan(value):
                raise ValueError(f"{name} must be between 0 and 3600000, got {value}")
        return self

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with `changes` applied (only known knobs), validated."""
        return replace(self, **changes).validate()


RefuseHook = Callable[[float], Awaitable[int]]


class Faults:
    """The live fault state of one provider process."""

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config.validate()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._outage_mode: OutageMode | None = None
        self._outage_until = 0.0
        # Set by the listener that owns the socket; without one, a refuse outage is impossible.
        self.refuse_hook: RefuseHook | None = None

    # -- counters --------------------------------------------------------------------------

    def count(self, name: str, by: int = 1) -> None:
        """Add to one counter of injected faults."""
        with self._lock:
            self._counters[name] += by

    def counters(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._counters)

    # -- outage ----------------------------------------------------------------------------

    def start_outage(self, mode: OutageMode, for_ms: float) -> None:
        """Record an outage window starting now (for_ms 0 ends any outage)."""
        with self._lock:
            self._outage_mode = mode if for_ms > 0 else None
            self._outage_until = time.monotonic() + for_ms / 1000

    def outage(self) -> tuple[OutageMode, float] | None:
        """The current outage mode and its remaining milliseconds, or None."""
        with self._lock:
            remaining_ms = (self._outage_until - time.monotonic()) * 1000
            if self._outage_mode is None or remaining_ms <= 0:
                return None
            return self._outage_mode, remaining_ms

    # -- random decisions ------------------------------------------------------------------

    def delay_s(self) -> float:
        """How long this request waits before it is handled (0 without latency faults).

        The base delay is log-normal around the median `latency_ms`; a `slow_rate` fraction
        of requests waits `slow_ms` more (counted as `slow`).
        """
        config = self.config
        with self._lock:
            delay_ms = 0.0
            if config.latency_ms > 0:
                delay_ms = config.latency_ms * math.exp(
                    config.latency_sigma * self._rng.gauss(0, 1)
                )
            if config.slow_rate > 0 and self._rng.random() < config.slow_rate:
                delay_ms += config.slow_ms
                self._counters["slow"] += 1
            if delay_ms > 0:
                self._counters["delayed"] += 1
        return delay_ms / 1000

    def roll_decline(self) -> str | None:
        """A decline code for this charge, or None; the caller counts it if it took effect."""
        rate = self.config.decline_rate
        with self._lock:
            if rate > 0 and self._rng.random() < rate:
                return self._rng.choice(DECLINE_CODES)
        return None

    def roll_capture_timeout(self) -> bool:
        """True if the answer to this capture is to be held back past the caller's patience."""
        rate = self.config.capture_timeout_rate
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def snapshot(self) -> dict[str, Any]:
        """The `/_faults` document: configuration, current outage, counters."""
        outage = self.outage()
        return {
            "config": asdict(self.config),
            "outage": (
                None
                if outage is None
                else {"mode": outage[0].value, "remaining_ms": round(outage[1], 1)}
            ),
            "counters": self.counters(),
        }
