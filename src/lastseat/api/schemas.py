"""Request and response bodies, with the limits every input obeys (they show in OpenAPI)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from lastseat.domain.holds import MAX_HOLD_TTL, MAX_SEATS_PER_CLAIM, MAX_UNITS_PER_CLAIM
from lastseat.domain.inventory import MAX_POOL_CAPACITY, MAX_PRICE_MINOR
from lastseat.domain.ledger import MAX_AMOUNT_MINOR

# The same rules as the domain's check_id / check_name, as patterns a client can read.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$"
SEAT_ID_PATTERN = (
    r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}/[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}/[0-9]{4}/[0-9]{4}$"
)
SEAT_ID_MAX_CHARS = 140
_SEAT_ID = re.compile(SEAT_ID_PATTERN)
# The schema says everything the server checks, so a request it admits is never refused as
# invalid (422); a rule JSON Schema cannot state across members (the seats of an event at
# most MAX_SEATS_PER_EVENT) is kept by bounds on each member instead.
MAX_BLOCKS = 50
MAX_ROWS_PER_BLOCK = 100
MAX_SEATS_PER_ROW = 40
MAX_POOLS = 50


def _seat_id(value: str) -> str:
    if len(value) > SEAT_ID_MAX_CHARS or not _SEAT_ID.fullmatch(value):
        raise ValueError(
            f"seat id {value[:SEAT_ID_MAX_CHARS]!r} is not EVENT/SECTION/ROW/NUMBER with a"
            " 4-digit row and number, e.g. 'ev-1/A/0001/0012' (see GET /events/{id}/seats)"
        )
    return value


def _whole(value: object) -> object:
    # JSON Schema's "integer" admits 3125.0 (a number with no fraction): so does the server.
    # Anything else (a string, a bool, 1.5) goes on to strict integer validation and fails.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Whole = BeforeValidator(_whole)
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=64)]
SeatId = Annotated[
    str,
    AfterValidator(_seat_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SEAT_ID_PATTERN,
            "maxLength": SEAT_ID_MAX_CHARS,
            "description": "EVENT/SECTION/ROW/NUMBER, e.g. ev-1/A/0001/0012",
        }
    ),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$", max_length=3)]
AmountMinor = Annotated[int, Field(ge=1, le=MAX_AMOUNT_MINOR), Whole]
PriceMinor = Annotated[int, Field(ge=1, le=MAX_PRICE_MINOR), Whole]
Quantity = Annotated[int, Field(ge=1, le=MAX_UNITS_PER_CLAIM), Whole]
TtlSeconds = Annotated[int, Field(ge=1, le=int(MAX_HOLD_TTL.total_seconds())), Whole]
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]


class Body(BaseModel):
    """A request body: strict JSON types, no unknown members."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SeatBlockIn(Body):
    """`rows` x `seats_per_row` seats of one section at one price."""

    section: Name
    rows: Annotated[int, Field(ge=1, le=MAX_ROWS_PER_BLOCK), Whole]
    seats_per_row: Annotated[int, Field(ge=1, le=MAX_SEATS_PER_ROW), Whole]
    price_minor: PriceMinor


class PoolIn(Body):
    """A general-admission pool."""

    name: Name
    capacity: Annotated[int, Field(ge=0, le=MAX_POOL_CAPACITY), Whole]
    price_minor: PriceMinor


def _some_inventory(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"required": [member], "properties": {member: {"minItems": 1}}}
        for member in ("seat_blocks", "pools")
    ]


class EventIn(Body):
    """A new event with its seat blocks and pools (at least one of either). Sections of the
    seat blocks differ, and so do pool names."""

    model_config = ConfigDict(json_schema_extra=_some_inventory)

    event_id: Id
    name: Name
    currency: Currency
    seat_blocks: Annotated[list[SeatBlockIn], Field(max_length=MAX_BLOCKS)] = []
    pools: Annotated[list[PoolIn], Field(max_length=MAX_POOLS)] = []

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.seat_blocks and not self.pools:
            raise ValueError("an event needs at least one seat block or one pool")
        return self


def _one_claim_kind(schema: dict[str, Any]) -> None:
    kinds = ("seat_ids", "pool", "section")
    not_null = {"seat_ids": {"type": "array"}, "pool": {"type": "string"}}
    schema["oneOf"] = [
        {
            "required": [kind],
            "properties": {
                kind: not_null.get(kind, {"type": "string"}),
                **{other: {"type": "null"} for other in kinds if other != kind},
                **({"quantity": {"type": "null"}} if kind == "seat_ids" else {}),
            },
        }
        for kind in kinds
    ]


class ClaimIn(Body):
    """Exactly one of: `seat_ids` (all or nothing; no `quantity`), a `pool` name with a
    `quantity` (default 1), or a `section` with a `quantity` (best available: any free seats
    of that section)."""

    model_config = ConfigDict(json_schema_extra=_one_claim_kind)

    event_id: Id
    seat_ids: (
        Annotated[
            list[SeatId],
            Field(
                min_length=1,
                max_length=MAX_SEATS_PER_CLAIM,
                json_schema_extra={"uniqueItems": True},
            ),
        ]
        | None
    ) = None
    pool: Name | None = None
    section: Name | None = None
    quantity: Quantity | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        named = [k for k in (self.seat_ids, self.pool, self.section) if k is not None]
        if len(named) != 1:
            raise ValueError("name exactly one of seat_ids, pool or section")
        if self.seat_ids is not None and len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("a claim names each seat once")
        if self.seat_ids is not None and self.quantity is not None:
            raise ValueError("quantity goes with pool or section; seat claims count seat_ids")
        return self


class HoldIn(ClaimIn):
    """A claim to hold for `ttl_s` seconds (default 10 minutes)."""

    ttl_s: TtlSeconds | None = None


class BuyerIn(Body):
    """A buyer to open a wallet for."""

    buyer_id: Id
    currency: Currency


class TopUpIn(Body):
    """Money brought into a wallet, in its currency's minor units."""

    amount_minor: AmountMinor


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str


class Health(BaseModel):
    """Liveness or readiness."""

    status: str


class EventCreated(BaseModel):
    """How much inventory a new event got."""

    event_id: str
    seats: int
    pools: int


class PoolOut(BaseModel):
    """One pool's availability."""

    pool_id: str
    name: str
    capacity: int
    available: int
    price_minor: int


class EventOut(BaseModel):
    """What an event has left."""

    event_id: str
    name: str
    seats_available: int
    seats_total: int
    pools: list[PoolOut]


class SeatOut(BaseModel):
    """One seat of the seat map."""

    seat_id: str
    section: str
    row: int
    number: int
    price_minor: int
    available: bool


class SeatMapOut(BaseModel):
    """Every seat of an event."""

    event_id: str
    seats: list[SeatOut]


class BuyerOut(BaseModel):
    """A buyer's wallet and the bearer token to act as that buyer."""

    buyer_id: str
    token: str
    balance_minor: int
    currency: str


class WalletOut(BaseModel):
    """A wallet's balance."""

    buyer_id: str
    balance_minor: int
    currency: str


class HoldOut(BaseModel):
    """A hold; `status` shows `expired` once `expires_at` has passed."""

    hold_id: str
    status: str
    expires_at: datetime
    fence: int
    event_id: str
    seat_ids: list[str]
    pool_id: str | None
    quantity: int


class OrderOut(BaseModel):
    """An order."""

    order_id: str
    status: str
    amount_minor: int
    currency: str
    quantity: int
    event_id: str
    hold_id: str


class TicketOut(BaseModel):
    """A ticket; `code` is the unguessable proof of purchase."""

    ticket_id: str
    seat_id: str | None
    pool_id: str | None
    code: str
    status: str


class PurchaseOut(BaseModel):
    """An order with its tickets."""

    order: OrderOut
    tickets: list[TicketOut]


class OrdersOut(BaseModel):
    """A buyer's orders, newest first."""

    orders: list[PurchaseOut]


class TicketsOut(BaseModel):
    """A buyer's tickets."""

    tickets: list[TicketOut]
