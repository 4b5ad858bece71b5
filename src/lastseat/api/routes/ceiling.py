"""The HTTP ceiling: what this server stack answers per second when a purchase costs nothing.

`POST /bench/ceiling` goes through everything a purchase goes through on its way in and out -
uvicorn, the request-metrics and body-limit middleware, routing, the JSON Content-Type check,
the claim body's validation, a buyer token check, an order-with-tickets answer serialized to
JSON - and does no database work at all. `lastseat bench` drives it with the same load
generator and concurrency as the purchases, so "HTTP purchases/s ÷ HTTP ceiling" says how
much of the HTTP path's cost is the sale itself.

The buyer's token comes in `X-Bench-Token`, not `Authorization`: a bearer token on a mutating
route makes the Idempotency-Key middleware keep a record in the database, which is exactly the
work this route must not do. It is a bench aid, so it stays out of the OpenAPI document; it is
always mounted (it reads and writes nothing, and answers only to a valid buyer token), so the
bench measures the very server it then sells through.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from lastseat.api.auth import buyer_for_token
from lastseat.api.body import require_json
from lastseat.api.deps import settings as settings_of
from lastseat.api.schemas import ClaimIn, OrderOut, PurchaseOut, TicketOut

CEILING_PATH = "/bench/ceiling"
TOKEN_HEADER = "X-Bench-Token"  # noqa: S105 - a header name, not a secret

router = APIRouter(include_in_schema=False)
_token = APIKeyHeader(name=TOKEN_HEADER, auto_error=False)


async def bench_buyer(request: Request, token: Annotated[str | None, Depends(_token)]) -> str:
    """The buyer whose token came in `X-Bench-Token`; 401 for none or an invalid one."""
    buyer_id = buyer_for_token(settings_of(request), token) if token else None
    if buyer_id is None:
        raise HTTPException(401, f"send a buyer's token in {TOKEN_HEADER}")
    return buyer_id


@router.post(CEILING_PATH, status_code=201, dependencies=[Depends(require_json)])
async def ceiling(body: ClaimIn, buyer_id: Annotated[str, Depends(bench_buyer)]) -> PurchaseOut:
    """An answer shaped like a confirmed quick buy of the claim, made up, nothing stored."""
    quantity = len(body.seat_ids) if body.seat_ids is not None else body.quantity or 1
    pool_id = f"{body.event_id}/{body.pool}" if body.pool is not None else None
    seats: list[str | None] = list(body.seat_ids) if body.seat_ids else [None] * quantity
    return PurchaseOut(
        order=OrderOut(
            order_id=f"ceiling-{buyer_id}",
            status="confirmed",
            amount_minor=0,
            currency="EUR",
            quantity=quantity,
            event_id=body.event_id,
            hold_id=f"ceiling-{buyer_id}",
        ),
        tickets=[
            TicketOut(
                ticket_id=f"ceiling-{n}",
                seat_id=seat,
                pool_id=pool_id if seat is None else None,
                code="ceiling",
                status="valid",
            )
            for n, seat in enumerate(seats)
        ],
    )
