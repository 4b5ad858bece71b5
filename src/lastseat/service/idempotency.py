"""Idempotency keys for mutating requests (filled in by the idempotency work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RequestFence:
    """The idempotency record a request runs under, and which attempt at it this is.

    Ids the request creates are derived from `record_id`, so a retry that takes over the key
    (attempt + 1) finds and resumes what an earlier attempt started instead of starting over.
    Writes check `attempt` in their transaction, so a dead attempt's late writes are refused.
    """

    record_id: str
    attempt: int

    def derived_id(self, prefix: str) -> str:
        """A stable id for something this request creates, e.g. `derived_id("ord")`."""
        return f"{prefix}_{self.record_id.rsplit('_', 1)[-1]}"


class IdempotencyRecords(Protocol):
    """What a write transaction offers for idempotency keys."""

    def check_request_fence(self, fence: RequestFence) -> None:
        """Refuse (FencedOutError) unless `fence.attempt` is still the key's current attempt;
        hold the key's row (shared) until this transaction ends, so no takeover can slip in
        between this check and the commit."""
        ...
