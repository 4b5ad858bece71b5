"""Orders and tickets: quick buy, list, read, cancel with refund."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from lastseat.api.auth import BuyerId
from lastseat.api.body import require_json
from lastseat.api.deps import CacheDep, MetricsDep, ServicesDep
from lastseat.api.idempotency import Fence, answer_with, stored_answer
from lastseat.api.metrics import Metrics
from lastseat.api.present import (
    claim_of,
    final_purchase_answer,
    purchase_answer,
    purchase_out,
    ticket_out,
)
from lastseat.api.problems import problem_responses
from lastseat.api.schemas import ClaimIn, IdPath, OrdersOut, PurchaseOut, TicketsOut
from lastseat.domain.orders import OrderStatus
from lastseat.service.booking import Purchase
from lastseat.service.idempotency import RequestFence

router = APIRouter(tags=["orders"])
_LOCATION = {"Location": {"description": "The order's URL", "schema": {"type": "string"}}}
CREATED_ORDER: dict[int | str, dict[str, Any]] = {
    201: {"description": "The confirmed order and its tickets", "headers": _LOCATION},
    202: {
        "description": "The order, `pending_payment`: the payment's outcome is not known yet"
        " (the provider is slow or down); poll the order at `Location` until it is final",
        "headers": _LOCATION,
        "model": PurchaseOut,
    },
}


def answer_purchase(purchase: Purchase, fence: RequestFence | None, metrics: Metrics) -> Response:
    """201 for a confirmed order, 202 for one whose payment is still unknown; Location. The
    bytes are the ones stored with the purchase, if its transaction stored them."""
    if purchase.order.status is not OrderStatus.PENDING_PAYMENT:
        metrics.purchased()
    return stored_answer(fence, purchase, purchase_answer)


@router.post(
    "/purchases",
    status_code=201,
    response_model=PurchaseOut,
    dependencies=[Depends(require_json)],
    responses={**CREATED_ORDER, **problem_responses(400, 401, 402, 404, 409, 413, 415, 422, 503)},
)
def quick_buy(
    body: ClaimIn,
    buyer_id: BuyerId,
    services: ServicesDep,
    cache: CacheDep,
    metrics: MetricsDep,
    fence: Fence,
) -> Response:
    """Claim, pay and confirm in one step, all or nothing; 202 while the payment's outcome
    is not known yet (poll the order at `Location`)."""
    claim = claim_of(body)
    answer_with(fence, final_purchase_answer)
    try:
        purchase = services.checkout.quick_buy(buyer_id, claim, fence)
    finally:
        # Sold, or refused because the cached picture was stale: either way it is out of date.
        cache.forget(body.event_id)
    return answer_purchase(purchase, fence, metrics)


@router.get("/orders", responses=problem_responses(401, 503))
def list_orders(buyer_id: BuyerId, services: ServicesDep) -> OrdersOut:
    """The caller's orders, newest first."""
    return OrdersOut(orders=[purchase_out(p) for p in services.booking.purchases_of(buyer_id)])


@router.get("/orders/{order_id}", responses=problem_responses(401, 404, 422, 503))
def read_order(order_id: IdPath, buyer_id: BuyerId, services: ServicesDep) -> PurchaseOut:
    """One of the caller's orders with its tickets."""
    return purchase_out(services.booking.purchase(buyer_id, order_id))


@router.post("/orders/{order_id}/cancel", responses=problem_responses(401, 404, 409, 422, 503))
def cancel_order(
    order_id: IdPath, buyer_id: BuyerId, services: ServicesDep, cache: CacheDep, fence: Fence
) -> PurchaseOut:
    """Refund a confirmed order: money back, tickets void, inventory free. Cancelling an
    order that is refunded already answers 200 with it as it stands (refunded; nothing is
    given back twice), so a resent cancel - same key after a crash, or a new key - succeeds;
    an order that was never confirmed (pending, failed, expired) is 409 `invalid-state`."""
    order = services.checkout.cancel_order(buyer_id, order_id, fence)
    cache.forget(order.event_id)
    return purchase_out(services.booking.purchase(buyer_id, order_id))


@router.get("/tickets", responses=problem_responses(401, 503))
def list_tickets(buyer_id: BuyerId, services: ServicesDep) -> TicketsOut:
    """The tickets of the caller's 100 newest orders, newest order first."""
    purchases = services.booking.purchases_of(buyer_id)
    return TicketsOut(tickets=[ticket_out(t) for p in purchases for t in p.tickets])
