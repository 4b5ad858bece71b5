"""Strategy names as users type them (DESIGN.md §5) and the one place that builds them.

The row-lock modes are separate names, not an option, so that one kebab-case word names the
whole mechanism the same way in the CLI, config, API and reports:

| name                   | what the second buyer of a locked row does                      |
| ---------------------- | --------------------------------------------------------------- |
| `row-lock`             | waits for it (up to lock_timeout, then LockTimeoutError)        |
| `row-lock-nowait`      | fails at once with LockNotAvailableError (a conflict, 409)      |
| `row-lock-skip-locked` | takes other free seats of the section (best-available claims)   |

`STRATEGY_NAMES` lists every name `make_strategy` accepts, in the order reports show them.
"""

from __future__ import annotations

from collections.abc import Callable

from lastseat.concurrency.advisory import AdvisoryLockStrategy
from lastseat.concurrency.atomic import AtomicStrategy
from lastseat.concurrency.batched import BatchedStrategy
from lastseat.concurrency.locked import DistributedLockStrategy
from lastseat.concurrency.naive import NaiveStrategy
from lastseat.concurrency.optimistic import OptimisticStrategy
from lastseat.concurrency.retry import RetryPolicy
from lastseat.concurrency.row_lock import MODE_NAMES, RowLockMode, RowLockStrategy
from lastseat.concurrency.serializable import SerializableStrategy
from lastseat.domain.errors import UnsafeStrategyError, ValidationError
from lastseat.service.locking import LockManager
from lastseat.service.ports import ClaimStrategy, Pause, no_pause

STRATEGY_NAMES: tuple[str, ...] = (
    "naive",
    "atomic",
    "row-lock",
    "row-lock-nowait",
    "row-lock-skip-locked",
    "optimistic",
    "serializable",
    "pg-advisory",
    "batched",
    "redis-lock",
    "redlock",
    "zk-lock",
)
# Strategies refereed by a lock service; `make_strategy` needs that service's LockManager.
LOCK_SERVICE_NAMES: tuple[str, ...] = ("redis-lock", "redlock", "zk-lock")
GUARDED_NAMES: tuple[str, ...] = tuple(n for n in STRATEGY_NAMES if n != "naive")
ROW_LOCK_MODES: dict[str, RowLockMode] = {name: mode for mode, name in MODE_NAMES.items()}


_SIMPLE: dict[str, Callable[[Pause, RetryPolicy | None], ClaimStrategy]] = {
    "atomic": AtomicStrategy,
    "optimistic": OptimisticStrategy,
    "serializable": SerializableStrategy,
    "pg-advisory": AdvisoryLockStrategy,
    "batched": BatchedStrategy,
}


def make_strategy(
    name: str,
    *,
    allow_unsafe: bool = False,
    pause: Pause = no_pause,
    retry: RetryPolicy | None = None,
    locks: LockManager | None = None,
) -> ClaimStrategy:
    """A fresh strategy object by its user-facing name (lock-service ones need `locks`)."""
    if name == "naive":
        if not allow_unsafe:
            raise UnsafeStrategyError(
                "strategy 'naive' sells seats twice on purpose; pass --allow-unsafe to run it"
            )
        return NaiveStrategy(pause, retry)
    if name in _SIMPLE:
        return _SIMPLE[name](pause, retry)
    if name in ROW_LOCK_MODES:
        return RowLockStrategy(pause, ROW_LOCK_MODES[name], retry)
    if name in LOCK_SERVICE_NAMES:
        if locks is None:
            raise ValidationError(f"strategy {name!r} needs its lock service configured")
        return DistributedLockStrategy(name, locks, pause, retry)
    raise ValidationError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)}")
