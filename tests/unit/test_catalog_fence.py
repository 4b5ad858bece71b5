"""Creating an event under an Idempotency-Key: a re-run of the same request after its server
died finds its own event and succeeds; anything else with that id stays a conflict."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lastseat.bootstrap import open_store
from lastseat.domain.errors import ConflictError
from lastseat.domain.inventory import Event, SeatBlock, build_event
from lastseat.domain.money import Money
from lastseat.service.catalog import CatalogService
from lastseat.service.idempotency import (
    IdempotencyService,
    RequestFence,
    RequestKey,
    Started,
    fingerprint,
)
from lastseat.service.ports import Store

KEY = RequestKey("admin", "POST", "/events", "k-1")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def gig(seats: int = 2) -> Event:
    return build_event("gig", "Gig", "EUR", [SeatBlock("A", 1, seats, Money(500, "EUR"))], [])


def fence_of(store: Store) -> RequestFence:
    begun = IdempotencyService(store).begin(KEY, fingerprint("POST", "/events", b"{}"))
    assert isinstance(begun, Started)
    return begun.fence


def test_a_rerun_of_the_request_that_made_the_event_succeeds(store: Store) -> None:
    fence = fence_of(store)
    catalog = CatalogService(store)
    catalog.create_event(gig(), fence)
    assert catalog.create_event(gig(), fence) == gig()  # the takeover's re-run


def test_an_event_id_taken_by_another_definition_is_a_conflict_even_under_a_fence(
    store: Store,
) -> None:
    fence = fence_of(store)
    catalog = CatalogService(store)
    catalog.create_event(gig(seats=2), fence)
    with pytest.raises(ConflictError):
        catalog.create_event(gig(seats=3), fence)


def test_without_a_fence_an_existing_event_id_is_a_conflict(store: Store) -> None:
    catalog = CatalogService(store)
    catalog.create_event(gig())
    with pytest.raises(ConflictError):
        catalog.create_event(gig())
