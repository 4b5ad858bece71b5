"""Idempotency-Key records in the postgres store (filled in by the idempotency work)."""

from __future__ import annotations

from lastseat.service.idempotency import RequestFence


class PostgresIdempotencyRecords:
    """Mixin of the postgres transaction: the idempotency-key table."""

    def check_request_fence(self, fence: RequestFence) -> None:
        """Refuse a dead attempt's late writes (see RequestFence)."""
        raise NotImplementedError
