"""The one retry policy: bounded attempts, full-jitter exponential backoff, narrow errors.

Full jitter (sleep a uniform random time in [0, min(cap, base * 2**n)]) spreads retrying
writers apart so that they stop colliding in lock-step.

Only two errors are retried, both meaning "nothing was kept, the whole attempt may run
again": a version-checked write that lost (VersionConflictError) and a transaction the
database aborted to stay serializable or to break a deadlock (SerializationError, SQLSTATE
40001 / 40P01, translated by the adapter). The charge of a quick buy runs inside the same
transaction, so a retried attempt never charges twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from lastseat.domain.errors import RetriesExhaustedError, SerializationError

T = TypeVar("T")


class VersionConflictError(Exception):
    """Internal signal: a version-checked write found a newer version. Always retried."""


RETRYABLE: tuple[type[Exception], ...] = (VersionConflictError, SerializationError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a conflicting operation is tried again."""

    max_attempts: int = 8
    base_delay_s: float = 0.001
    max_delay_s: float = 0.050

    def run(self, operation: Callable[[], T], on_retry: Callable[[], None]) -> T:
        """Run `operation`, retrying on RETRYABLE errors; RetriesExhaustedError at the end."""

        def before_sleep(_state: RetryCallState) -> None:
            on_retry()

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.base_delay_s, max=self.max_delay_s),
            retry=retry_if_exception_type(RETRYABLE),
            before_sleep=before_sleep,
        )
        try:
            return retrying(operation)
        except RetryError as exc:
            raise RetriesExhaustedError(
                f"conflict: {self.max_attempts} attempts lost to concurrent buyers; try again"
            ) from exc
