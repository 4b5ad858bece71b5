"""The one place that reads psycopg exceptions and SQLSTATEs and turns them into lastseat errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import PoolTimeout

from lastseat.domain.errors import (
    BookkeepingError,
    FencedOutError,
    InsufficientFundsError,
    InventoryTakenError,
    LockNotAvailableError,
    LockTimeoutError,
    RacingWriteError,
    SerializationError,
    StoreBusyError,
    StoreError,
)
from lastseat.domain.ledger import refused_debit
from lastseat.domain.money import Money

# The CHECK constraint that keeps wallet balances from going negative (named in the schema).
BALANCE_CONSTRAINT = "balance_not_negative"
# `CHECK (held + sold <= capacity)` on pools (PostgreSQL's name for an unnamed table CHECK).
CAPACITY_CONSTRAINT = "pools_check"
_CONSTRAINT_CLASS = "23"  # integrity_constraint_violation: unique, check, foreign key, ...
# A duplicate key or a full pool: a concurrent writer got there first (a racing sale, a
# second refund of one order, two first attempts of one Idempotency-Key).
_RACING_STATES = frozenset({"23505", "23P01"})  # unique_violation, exclusion_violation
_CONFLICTS = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_TIMEOUTS = frozenset({"55P03", "57014"})  # lock_not_available, query_canceled (timeouts)
_LOCK_NOT_AVAILABLE = "55P03"
# Raised by lastseat_pay (migration 0005): no such account, another currency, too little.
_REFUSED_DEBITS = frozenset({"LS404", "LS409", "LS402"})
_ATTEMPT_OVER = "LS410"  # a queued stored answer whose request attempt was taken over
_TAKEN = "LSCLM"  # a queued claim took less than it names
_LASTSEAT_CLASS = "LS"


def translate(exc: psycopg.Error) -> Exception:
    """The lastseat error for a driver error."""
    state = exc.sqlstate or ""
    if state.startswith(_LASTSEAT_CLASS):
        return _raised_by_lastseat(exc, state)
    if state.startswith(_CONSTRAINT_CLASS):
        return _constraint_error(exc, state)
    if state in _CONFLICTS:
        return SerializationError(f"a concurrent transaction won (SQLSTATE {state}); try again")
    if state in _TIMEOUTS:
        return LockTimeoutError(f"a lock was not granted in time (SQLSTATE {state})")
    if isinstance(exc, PoolTimeout):
        return StoreBusyError("no database connection became free within the pool timeout")
    return StoreError(f"postgresql: {type(exc).__name__}: {exc}")


def _raised_by_lastseat(exc: psycopg.Error, state: str) -> Exception:
    """An error our own SQL functions raise (migration 0005) to abort a queued transaction."""
    if state == _ATTEMPT_OVER:
        return FencedOutError(exc.diag.message_primary or "the request's attempt is over")
    if state == _TAKEN:
        return InventoryTakenError("the inventory the claim names is taken")
    if state not in _REFUSED_DEBITS:
        return StoreError(f"postgresql: unknown lastseat SQLSTATE {state}: {exc}")
    # lastseat_pay refused the debit: the facts are JSON in the error's DETAIL.
    facts = json.loads(exc.diag.message_detail or "{}")
    amount = Money(int(facts["amount"]), str(facts["currency"]))
    return refused_debit(str(facts["account"]), amount, facts["holds"])


def _constraint_error(exc: psycopg.Error, state: str) -> Exception:
    """A refused racing write is a conflict; any other constraint caught our own bookkeeping."""
    name = exc.diag.constraint_name or ""
    if name == BALANCE_CONSTRAINT:
        return InsufficientFundsError("the wallet does not hold enough money")
    if state in _RACING_STATES or name == CAPACITY_CONSTRAINT:
        return RacingWriteError(f"a database constraint refused the write ({name})")
    what = f"constraint {name or state} on {exc.diag.table_name or '?'}"
    return BookkeepingError(f"{what} refused an inconsistent write: {exc}", name or state)


@contextmanager
def translated(*, nowait: bool = False) -> Iterator[None]:
    """Run a block with driver errors turned into lastseat errors.

    55P03 means both "lock_timeout ran out" and "NOWAIT found the row locked"; only the
    statement knows which it asked for, so a NOWAIT statement runs with `nowait=True`.
    """
    try:
        yield
    except psycopg.Error as exc:
        if nowait and exc.sqlstate == _LOCK_NOT_AVAILABLE:
            raise LockNotAvailableError(
                "another buyer is claiming it right now; try again"
            ) from exc
        raise translate(exc) from exc
