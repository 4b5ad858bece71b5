"""One root for every error lastseat raises on purpose; narrow types below it.

Each type maps to exactly one API status / CLI exit code in the entry points, so callers branch
on the type, never on message text.
"""

from __future__ import annotations


class LastseatError(Exception):
    """Root of every error lastseat raises on purpose."""


class ValidationError(LastseatError):
    """The request itself is malformed or out of range."""


class NotFoundError(LastseatError):
    """The named event, seat, pool, hold, order or wallet does not exist (for this buyer)."""


class UnavailableError(LastseatError):
    """The seats or pool units asked for are already taken."""


class InventoryTakenError(UnavailableError):
    """A claim sent without waiting for its answer found its inventory taken, and aborted its
    transaction (lapsed holds may still make room: `atomic` then looks, in a new one)."""


class ConflictError(LastseatError):
    """A concurrent writer won; retrying may succeed."""


class RetriesExhaustedError(ConflictError):
    """Every allowed retry lost to a concurrent writer: conflict, try again later."""


class RacingWriteError(ConflictError):
    """A unique or capacity constraint refused a write: a concurrent writer got there first.

    The message names the constraint for operators; callers read a plain "try again".
    """


class SerializationError(ConflictError):
    """The database aborted the transaction to keep it serializable (or broke a deadlock).

    Nothing of the transaction was kept, so running the whole transaction again is safe.
    """


class LockNotAvailableError(ConflictError):
    """A row was locked by another buyer and the claim was told not to wait (NOWAIT)."""


class FencedOutError(ConflictError):
    """A write carried a fencing token older than one storage has already seen: its lock had
    expired and someone else held it since. The write is refused (and counted)."""


class HoldExpiredError(LastseatError):
    """The hold ran out and its seats could not be claimed again."""


class InsufficientFundsError(LastseatError):
    """The wallet does not hold enough money for the charge."""


class InvalidTransitionError(LastseatError):
    """A state machine was asked for a transition its table does not allow."""


class StateConflictError(LastseatError):
    """A well-formed request that what already exists rules out (a wallet in another
    currency than the one asked for or sold in): no retry of the same request succeeds."""


class BookkeepingError(LastseatError):
    """A schema constraint caught lastseat's own bookkeeping going wrong (a counter below zero
    or above its truth, a seat whose status disagrees with its hold): a server fault to log
    and count, never a conflict a client should retry. `constraint` names what fired."""

    def __init__(self, message: str, constraint: str) -> None:
        super().__init__(message)
        self.constraint = constraint


class UnsafeStrategyError(LastseatError):
    """An unguarded strategy was requested without an explicit allow-unsafe switch."""


class StoreError(LastseatError):
    """The storage adapter failed in a way the domain did not cause."""


class StoreBusyError(StoreError):
    """The store could not take its write lock within the configured timeout."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this code (or otherwise not usable by it)."""


class OverloadedError(StoreBusyError):
    """Too many claims on one hot resource are running or waiting in this process: the claim
    was refused before it touched the store (nothing done), so a later retry is safe."""


class LockTimeoutError(StoreBusyError):
    """A lock (a row lock, or a distributed lock) was not granted within its timeout."""


class LockServiceError(StoreError):
    """The lock service (Redis, ZooKeeper) could not be reached or answered wrongly."""


class PaymentDeclinedError(LastseatError):
    """The payment provider refused the charge (card declined); nothing was taken."""


class PaymentUnknownError(LastseatError):
    """The payment's outcome is not known (timeout, provider down, answer lost): the charge
    may or may not have happened. Retry with the same payment key, or let the reconciler."""


class PaymentProviderError(LastseatError):
    """The provider refused the request itself (bad key reuse, bad amount): a bug, not a fault."""


class IdempotencyError(LastseatError):
    """Root of the Idempotency-Key errors."""


class IdempotencyKeyMissingError(IdempotencyError):
    """A mutating request came without a (well-formed) Idempotency-Key header."""


class IdempotencyKeyReusedError(IdempotencyError):
    """The key was used before with a different request (method, route or body)."""


class RequestInProgressError(IdempotencyError):
    """The first request with this key is still running; retry after a while."""
