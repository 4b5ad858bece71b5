"""When to try a call again: a per-call policy (attempts, full-jitter backoff) and a budget.

The policy bounds one call. The budget bounds a whole client (Finagle's RetryBudget, gRPC's
retry throttling): every call deposits `deposit_ratio` of a retry, every retry withdraws one,
and a reserve refilled at `min_retries_per_s` lets a quiet client still retry. When a server
struggles, retries stay near `deposit_ratio` of the traffic instead of multiplying it:

    100 buyers, server down, max_attempts=4, no budget:   400 requests hit it
    same with deposit_ratio=0.2:                           ~120 (+ the reserve)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from random import Random


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait between tries of one call.

    The n-th retry (n = 0, 1, ...) waits uniform(0, min(max_delay_s, base_delay_s * 2**n))
    seconds, but never less than the server's Retry-After; a Retry-After above
    `max_retry_after_s` is not waited for: the error is raised instead.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("delays must not be negative")

    def backoff_s(self, retry_number: int, rng: Random) -> float:
        """Full jitter: uniform(0, min(max_delay_s, base_delay_s * 2**retry_number))."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(retry_number, 62))
        return rng.uniform(0.0, ceiling)

    def delay_s(self, retry_number: int, retry_after_s: float | None, rng: Random) -> float:
        """The wait before a retry: the backoff, or the server's Retry-After if longer."""
        backoff = self.backoff_s(retry_number, rng)
        return backoff if retry_after_s is None else max(backoff, retry_after_s)


# Sums of fractional deposits (5 x 0.2) land just below 1.0 in binary floating point.
_EPSILON = 1e-9
NO_RETRY = RetryPolicy(max_attempts=1)
DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class RetryBudgetStatistics:
    """A budget's state: deposited tokens, reserve tokens, and refused retries."""

    balance: float
    reserve: float
    refused: int


class RetryBudget:
    """Retry tokens shared by every call of a client; thread-safe, never blocks."""

    def __init__(
        self,
        *,
        deposit_ratio: float = 0.2,
        min_retries_per_s: float = 10.0,
        max_balance: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if deposit_ratio < 0 or min_retries_per_s < 0 or max_balance < 0:
            raise ValueError("budget parameters must not be negative")
        self._deposit_ratio = deposit_ratio
        self._rate = min_retries_per_s
        self._max_balance = max_balance
        self._clock = clock
        self._lock = threading.Lock()
        self._balance = 0.0
        self._reserve = min_retries_per_s
        self._refilled_at = clock()
        self._refused = 0

    def deposit(self) -> None:
        """A call started: it earns `deposit_ratio` of a retry."""
        with self._lock:
            self._balance = min(self._max_balance, self._balance + self._deposit_ratio)

    def try_withdraw(self) -> bool:
        """Take one retry token if there is one (deposits first, then the reserve)."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._refilled_at)
            self._refilled_at = now
            self._reserve = min(self._rate, self._reserve + elapsed * self._rate)
            if self._balance >= 1.0 - _EPSILON:
                self._balance = max(0.0, self._balance - 1.0)
                return True
            if self._reserve >= 1.0 - _EPSILON:
                self._reserve = max(0.0, self._reserve - 1.0)
                return True
            self._refused += 1
            return False

    def statistics(self) -> RetryBudgetStatistics:
        """The tokens left and how many retries were refused."""
        with self._lock:
            return RetryBudgetStatistics(self._balance, self._reserve, self._refused)
