"""Idempotency-Key records in the postgres store (filled in by the idempotency work)."""

from __future__ import annotations


class PostgresIdempotencyRecords:
    """Mixin of the postgres transaction: the idempotency-key table."""
