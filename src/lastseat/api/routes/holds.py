"""Holds: claim for a while, read, release, and pay (which makes an order)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Response

from lastseat.api.auth import BuyerId
from lastseat.api.body import require_json
from lastseat.api.deps import CacheDep, MetricsDep, ServicesDep
from lastseat.api.idempotency import Fence
from lastseat.api.present import claim_of, hold_out
from lastseat.api.problems import problem_responses
from lastseat.api.routes.orders import CREATED_ORDER, answer_purchase
from lastseat.api.schemas import HoldIn, HoldOut, IdPath, PurchaseOut

router = APIRouter(tags=["holds"])


@router.post(
    "/holds",
    status_code=201,
    dependencies=[Depends(require_json)],
    responses=problem_responses(400, 401, 404, 409, 413, 415, 422, 503),
)
def place_hold(
    body: HoldIn, buyer_id: BuyerId, services: ServicesDep, cache: CacheDep, fence: Fence
) -> HoldOut:
    """Claim seats or pool units for `ttl_s` seconds (default 10 minutes)."""
    claim = claim_of(body)
    ttl = timedelta(seconds=body.ttl_s) if body.ttl_s is not None else None
    try:
        hold = services.booking.place_hold(buyer_id, claim, ttl, fence)
    finally:
        cache.forget(body.event_id)
    return hold_out(hold, services.booking.clock.now())


@router.get("/holds/{hold_id}", responses=problem_responses(401, 404, 422, 503))
def read_hold(hold_id: IdPath, buyer_id: BuyerId, services: ServicesDep) -> HoldOut:
    """One of the caller's holds."""
    return hold_out(services.booking.hold(buyer_id, hold_id), services.booking.clock.now())


@router.delete("/holds/{hold_id}", responses=problem_responses(401, 404, 409, 422, 503))
def release_hold(
    hold_id: IdPath, buyer_id: BuyerId, services: ServicesDep, cache: CacheDep, fence: Fence
) -> HoldOut:
    """Give a hold's inventory back. A hold that is gone already answers 200 as it stands:
    `released` if released before (a resent release), `expired` if it lapsed, whether or not
    anything marked it expired yet. A paid hold, or one with an order being paid, is 409
    `invalid-state`."""
    hold = services.booking.release_hold(buyer_id, hold_id, fence)
    cache.forget(hold.claim.event_id)
    return hold_out(hold, services.booking.clock.now())


@router.post(
    "/holds/{hold_id}/order",
    status_code=201,
    response_model=PurchaseOut,
    responses={**CREATED_ORDER, **problem_responses(401, 402, 404, 409, 410, 422, 503)},
)
def pay_hold(
    hold_id: IdPath,
    buyer_id: BuyerId,
    services: ServicesDep,
    cache: CacheDep,
    metrics: MetricsDep,
    fence: Fence,
) -> Response:
    """Pay for a hold; a lapsed hold is re-claimed if still free, else 410. 202 while the
    payment's outcome is not known yet (poll the order at `Location`)."""
    purchase = services.checkout.pay_hold(buyer_id, hold_id, fence)
    cache.forget(purchase.order.event_id)
    return answer_purchase(purchase, fence, metrics)
