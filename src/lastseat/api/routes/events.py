"""Events: create (admin), read what is left, and the seat map."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from lastseat.api.auth import require_admin
from lastseat.api.body import require_json
from lastseat.api.deps import CacheDep, ServicesDep
from lastseat.api.idempotency import Fence
from lastseat.api.present import event_out, seat_map_out
from lastseat.api.problems import problem_responses
from lastseat.api.schemas import EventCreated, EventIn, EventOut, IdPath, SeatMapOut
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money
from lastseat.service.ports import Availability

router = APIRouter(tags=["events"])
_READ_PROBLEMS = problem_responses(404, 422, 503)


@router.post(
    "/events",
    status_code=201,
    dependencies=[Depends(require_admin), Depends(require_json)],
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 503),
)
def create_event(body: EventIn, services: ServicesDep, fence: Fence) -> EventCreated:
    """Put an event with its seat blocks and pools on sale."""
    made = build_event(
        body.event_id,
        body.name,
        body.currency,
        [
            SeatBlock(b.section, b.rows, b.seats_per_row, Money(b.price_minor, body.currency))
            for b in body.seat_blocks
        ],
        [(p.name, p.capacity, Money(p.price_minor, body.currency)) for p in body.pools],
    )
    services.catalog.create_event(made, fence)
    return EventCreated(event_id=made.event_id, seats=len(made.seats), pools=len(made.pools))


def _availability(event_id: str, services: ServicesDep, cache: CacheDep) -> Availability:
    return cache.get(event_id, lambda: services.booking.availability(event_id))


@router.get("/events/{event_id}", responses=_READ_PROBLEMS)
def read_event(event_id: IdPath, services: ServicesDep, cache: CacheDep) -> EventOut:
    """How many seats and pool units an event has left (may be a short TTL stale)."""
    return event_out(_availability(event_id, services, cache))


@router.get("/events/{event_id}/seats", responses=_READ_PROBLEMS)
def read_seats(event_id: IdPath, services: ServicesDep, cache: CacheDep) -> SeatMapOut:
    """Every seat of an event and whether it is free (may be a short TTL stale)."""
    return seat_map_out(_availability(event_id, services, cache))
