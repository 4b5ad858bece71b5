"""Idempotency-Key records in the sqlite store (filled in by the idempotency work)."""

from __future__ import annotations


class SqliteIdempotencyRecords:
    """Mixin of the sqlite transaction: the idempotency-key table."""
