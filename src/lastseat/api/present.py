"""Domain objects turned into response bodies."""

from __future__ import annotations

from datetime import datetime

from lastseat.api.schemas import (
    ClaimIn,
    EventOut,
    HoldOut,
    OrderOut,
    PoolOut,
    PurchaseOut,
    SeatMapOut,
    SeatOut,
    TicketOut,
)
from lastseat.domain.errors import NotFoundError
from lastseat.domain.holds import (
    ClaimRequest,
    Hold,
    HoldStatus,
    PoolClaim,
    SeatClaim,
    SectionClaim,
)
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.tickets import Ticket
from lastseat.service.booking import Purchase
from lastseat.service.idempotency import StoredResponse
from lastseat.service.ports import Availability

JSON = "application/json"


def claim_of(body: ClaimIn) -> ClaimRequest:
    """The domain claim a request body names; NotFoundError for a seat of another event."""
    quantity = body.quantity or 1
    if body.seat_ids is not None:
        for seat_id in body.seat_ids:
            # Well formed (the schema said so) but not in this event: the event has no such
            # seat, like any other seat id it does not know (404, not a malformed request).
            if not seat_id.startswith(f"{body.event_id}/"):
                raise NotFoundError(f"seat {seat_id} is not a seat of event {body.event_id}")
        return SeatClaim(body.event_id, tuple(body.seat_ids))
    if body.section is not None:
        return SectionClaim(body.event_id, body.section, quantity)
    return PoolClaim(body.event_id, f"{body.event_id}/{body.pool}", quantity)


def event_out(found: Availability) -> EventOut:
    """An event's counts of what is left."""
    return EventOut(
        event_id=found.event_id,
        name=found.name,
        seats_available=found.seats_available,
        seats_total=len(found.seats),
        pools=[
            PoolOut(
                pool_id=p.pool_id,
                name=p.name,
                capacity=p.capacity,
                available=p.available,
                price_minor=p.price.amount_minor,
            )
            for p in found.pools
        ],
    )


def seat_map_out(found: Availability) -> SeatMapOut:
    """Every seat of an event and whether it is free."""
    return SeatMapOut(
        event_id=found.event_id,
        seats=[
            SeatOut(
                seat_id=s.seat_id,
                section=s.section,
                row=s.row,
                number=s.number,
                price_minor=s.price.amount_minor,
                available=s.available,
            )
            for s in found.seats
        ],
    )


def hold_out(hold: Hold, now: datetime) -> HoldOut:
    """A hold as its buyer sees it: a lapsed active hold reads as expired."""
    claim = hold.claim
    status = HoldStatus.EXPIRED if hold.is_lapsed(now) else hold.status
    return HoldOut(
        hold_id=hold.hold_id,
        status=status.value,
        expires_at=hold.expires_at,
        fence=hold.fence,
        event_id=claim.event_id,
        seat_ids=list(claim.seat_ids) if isinstance(claim, SeatClaim) else [],
        pool_id=claim.pool_id if isinstance(claim, PoolClaim) else None,
        quantity=claim.quantity,
    )


def order_out(order: Order) -> OrderOut:
    """An order's public fields."""
    return OrderOut(
        order_id=order.order_id,
        status=order.status.value,
        amount_minor=order.amount.amount_minor,
        currency=order.amount.currency,
        quantity=order.quantity,
        event_id=order.event_id,
        hold_id=order.hold_id,
    )


def ticket_out(ticket: Ticket) -> TicketOut:
    """A ticket's public fields."""
    return TicketOut(
        ticket_id=ticket.ticket_id,
        seat_id=ticket.seat_id,
        pool_id=ticket.pool_id,
        code=ticket.code,
        status=ticket.status.value,
    )


def purchase_out(purchase: Purchase) -> PurchaseOut:
    """An order with its tickets."""
    return PurchaseOut(
        order=order_out(purchase.order), tickets=[ticket_out(t) for t in purchase.tickets]
    )


def purchase_answer(purchase: Purchase) -> StoredResponse:
    """A purchase as sent: 201 (confirmed) or 202 (payment unknown), its Location, its body,
    serialized once (the same bytes are stored for replays)."""
    status = 202 if purchase.order.status is OrderStatus.PENDING_PAYMENT else 201
    headers = (("Location", f"/orders/{purchase.order.order_id}"), ("Content-Type", JSON))
    return StoredResponse(status, headers, purchase_out(purchase).model_dump_json().encode())


def final_purchase_answer(result: object) -> StoredResponse | None:
    """The answer to store with a use case's result: a confirmed purchase's; None for
    anything else (a 202 is not final, and a provider's first step returns an order)."""
    if not isinstance(result, Purchase) or result.order.status is not OrderStatus.CONFIRMED:
        return None
    return purchase_answer(result)
