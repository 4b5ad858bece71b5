"""The one place that reads sqlite3 exceptions and turns them into lastseat errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from lastseat.domain.errors import (
    BookkeepingError,
    InsufficientFundsError,
    RacingWriteError,
    StoreBusyError,
    StoreError,
)


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the write lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def translate(exc: sqlite3.Error) -> Exception:
    """The lastseat error for a driver error."""
    if isinstance(exc, sqlite3.IntegrityError):
        return _constraint_error(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
        return StoreBusyError("the database stayed locked longer than the busy timeout")
    return StoreError(f"sqlite: {exc}")


# The pool CHECK that refuses a racing over-claim (SQLite names an unnamed CHECK by its text).
CAPACITY_CHECK = "held + sold <= capacity"


def _constraint_error(text: str) -> Exception:
    """A refused racing write is a conflict; any other constraint caught our own bookkeeping."""
    if "balance_minor" in text:
        return InsufficientFundsError("the wallet does not hold enough money")
    # A duplicate key or a full pool: a concurrent writer got there first.
    if text.startswith("UNIQUE constraint failed") or CAPACITY_CHECK in text:
        return RacingWriteError(f"a database constraint refused the write ({text})")
    constraint = text.partition(": ")[2] or text
    return BookkeepingError(f"{text}: an inconsistent write was refused", constraint)


@contextmanager
def translated() -> Iterator[None]:
    """Run a block with driver errors turned into lastseat errors."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc) from exc
