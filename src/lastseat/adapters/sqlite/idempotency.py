"""Idempotency-Key records in the sqlite store (filled in by the idempotency work)."""

from __future__ import annotations

from lastseat.service.idempotency import RequestFence


class SqliteIdempotencyRecords:
    """Mixin of the sqlite transaction: the idempotency-key table."""

    def check_request_fence(self, fence: RequestFence) -> None:
        """Refuse a dead attempt's late writes (see RequestFence)."""
        raise NotImplementedError
