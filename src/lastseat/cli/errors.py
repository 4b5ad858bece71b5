"""How the CLI reports failure: one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

from lastseat.domain.errors import (
    NotFoundError,
    SchemaVersionError,
    StoreError,
    UnsafeStrategyError,
    ValidationError,
)
from lastseat.lab.history import HistoryFormatError

EXIT_FAILED = 1  # the command ran and the answer is "no" (sold out, invariant violated, ...)
EXIT_USAGE = 2  # bad input: fix the command line or the file it names

# Errors that mean "your input is wrong or unusable" (exit 2), not "the request was refused".
BAD_INPUT: tuple[type[Exception], ...] = (
    ValidationError,
    UnsafeStrategyError,
    NotFoundError,
    StoreError,
    SchemaVersionError,
    HistoryFormatError,
)


def fail(message: str, code: int) -> NoReturn:
    """Print `lastseat: error: <message>` as one line and exit."""
    one_line = " ".join(message.split())
    print(f"lastseat: error: {one_line}", file=sys.stderr)
    sys.exit(code)


def exit_code_for(exc: Exception) -> int:
    """2 for bad input, 1 for a refused request."""
    return EXIT_USAGE if isinstance(exc, BAD_INPUT) else EXIT_FAILED
