"""Tickets: one per seat or pool unit of a confirmed order, with an unguessable code."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

TICKET_CODE_BYTES = 16  # 128 bits: guessing a valid code is hopeless at any request rate


class TicketStatus(enum.StrEnum):
    """A ticket is valid until its order is refunded."""

    VALID = "valid"
    VOID = "void"


def new_ticket_code() -> str:
    """A fresh, URL-safe, 128-bit random ticket code."""
    return secrets.token_urlsafe(TICKET_CODE_BYTES)


def new_id(prefix: str) -> str:
    """A fresh random identifier with a readable prefix (e.g. `ord_…`)."""
    return f"{prefix}_{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class Ticket:
    """Proof of purchase for one seat or one pool unit."""

    ticket_id: str
    order_id: str
    event_id: str
    seat_id: str | None
    pool_id: str | None
    code: str
    status: TicketStatus = TicketStatus.VALID
