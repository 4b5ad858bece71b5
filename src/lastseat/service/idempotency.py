"""Idempotency keys for mutating requests (filled in by the idempotency work)."""

from __future__ import annotations

from typing import Protocol


class IdempotencyRecords(Protocol):
    """What a write transaction offers for idempotency keys."""
