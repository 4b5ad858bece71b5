"""Strategy names as users type them (DESIGN.md §5) and the one place that builds them."""

from __future__ import annotations

from lastseat.concurrency.atomic import AtomicStrategy
from lastseat.concurrency.naive import NaiveStrategy
from lastseat.concurrency.optimistic import OptimisticStrategy
from lastseat.concurrency.retry import RetryPolicy
from lastseat.concurrency.row_lock import RowLockStrategy
from lastseat.domain.errors import UnsafeStrategyError, ValidationError
from lastseat.service.ports import ClaimStrategy, Pause, no_pause

STRATEGY_NAMES: tuple[str, ...] = ("naive", "atomic", "row-lock", "optimistic")
GUARDED_NAMES: tuple[str, ...] = tuple(n for n in STRATEGY_NAMES if n != "naive")


def make_strategy(
    name: str,
    *,
    allow_unsafe: bool = False,
    pause: Pause = no_pause,
    retry: RetryPolicy | None = None,
) -> ClaimStrategy:
    """A fresh strategy object by its user-facing name."""
    if name == "naive":
        if not allow_unsafe:
            raise UnsafeStrategyError(
                "strategy 'naive' sells seats twice on purpose; pass --allow-unsafe to run it"
            )
        return NaiveStrategy(pause)
    if name == "atomic":
        return AtomicStrategy(pause)
    if name == "row-lock":
        return RowLockStrategy(pause)
    if name == "optimistic":
        return OptimisticStrategy(pause, retry)
    raise ValidationError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)}")
