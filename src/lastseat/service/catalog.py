"""Event use cases: put an event with its seats and pools on sale."""

from __future__ import annotations

from datetime import UTC, datetime

from lastseat.domain.errors import ConflictError
from lastseat.domain.inventory import Event
from lastseat.service.idempotency import RequestFence
from lastseat.service.ports import Availability, Store


class CatalogService:
    """Creates events; reading availability is the booking service's job."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create_event(self, event: Event, fence: RequestFence | None = None) -> Event:
        """Store a new event; an event id that exists already is a conflict.

        Under a request fence, finding exactly this event already stored is success: an
        earlier attempt of the same request (whose server died before it answered) made it.
        """
        with self.store.write() as tx:
            if fence is not None:
                tx.check_request_fence(fence)
            if tx.event_currency(event.event_id) is not None:
                stored = tx.availability(event.event_id, datetime.now(UTC))
                if fence is not None and stored is not None and _same(event, stored):
                    return event
                raise ConflictError(f"event {event.event_id} exists already")
            tx.insert_event(event)
        return event


def _same(event: Event, stored: Availability) -> bool:
    """Whether `stored` is `event` as defined (names, seats, pools, capacities, prices)."""
    seats = {(s.seat_id, s.price) for s in event.seats}
    pools = {(p.pool_id, p.name, p.capacity, p.price) for p in event.pools}
    return (
        stored.name == event.name
        and seats == {(s.seat_id, s.price) for s in stored.seats}
        and pools == {(p.pool_id, p.name, p.capacity, p.price) for p in stored.pools}
    )
