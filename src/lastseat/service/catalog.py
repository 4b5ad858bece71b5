"""Event use cases: put an event with its seats and pools on sale."""

from __future__ import annotations

from lastseat.domain.errors import ConflictError
from lastseat.domain.inventory import Event
from lastseat.service.ports import Store


class CatalogService:
    """Creates events; reading availability is the booking service's job."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create_event(self, event: Event) -> Event:
        """Store a new event; an event id that exists already is a conflict."""
        with self.store.write() as tx:
            if tx.event_currency(event.event_id) is not None:
                raise ConflictError(f"event {event.event_id} exists already")
            tx.insert_event(event)
        return event
