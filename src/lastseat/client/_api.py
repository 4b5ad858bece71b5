"""The API's calls, written once: each method builds a `RequestSpec` and hands it to `_send`.

`LastseatClient` returns `Result` from `_send`, `AsyncLastseatClient` an awaitable of it, so
both shells offer the same methods with the same parameters and no duplicated code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from lastseat.client._core import RequestSpec, mutation, read
from lastseat.client.models import Pool, SeatBlock

T = TypeVar("T")


def _seg(value: str) -> str:
    """A path segment: ids are escaped so they cannot change the route."""
    return quote(value, safe="")


def _member(item: SeatBlock | Pool | Mapping[str, Any]) -> dict[str, Any]:
    return item.to_json() if isinstance(item, SeatBlock | Pool) else dict(item)


def claim_body(
    event_id: str,
    *,
    seat_ids: Sequence[str] | None,
    pool: str | None,
    section: str | None,
    quantity: int | None,
) -> dict[str, Any]:
    """The claim members of a purchase or hold: exactly one of seat_ids, pool or section."""
    if sum(kind is not None for kind in (seat_ids, pool, section)) != 1:
        raise ValueError("name exactly one of seat_ids, pool or section")
    body: dict[str, Any] = {"event_id": event_id}
    if seat_ids is not None:
        body["seat_ids"] = list(seat_ids)
    if pool is not None:
        body["pool"] = pool
    if section is not None:
        body["section"] = section
    if quantity is not None:
        body["quantity"] = quantity
    return body


class ApiMethods(Generic[T]):
    """Every call of the API; `T` is what `_send` returns (a result, or an awaitable of one)."""

    def _send(self, spec: RequestSpec) -> T:
        raise NotImplementedError

    # --- admin -------------------------------------------------------------------------

    def create_event(
        self,
        event_id: str,
        name: str,
        currency: str,
        *,
        seat_blocks: Sequence[SeatBlock | Mapping[str, Any]] = (),
        pools: Sequence[Pool | Mapping[str, Any]] = (),
        idempotency_key: str | None = None,
    ) -> T:
        """Put an event on sale (admin): POST /events."""
        body = {
            "event_id": event_id,
            "name": name,
            "currency": currency,
            "seat_blocks": [_member(b) for b in seat_blocks],
            "pools": [_member(p) for p in pools],
        }
        return self._send(
            mutation("POST", "/events", body, admin=True, idempotency_key=idempotency_key)
        )

    def create_buyer(
        self, buyer_id: str, currency: str, *, idempotency_key: str | None = None
    ) -> T:
        """Open a buyer's wallet and get the buyer's token (admin): POST /buyers."""
        body = {"buyer_id": buyer_id, "currency": currency}
        return self._send(
            mutation("POST", "/buyers", body, admin=True, idempotency_key=idempotency_key)
        )

    def top_up(self, buyer_id: str, amount_minor: int, *, idempotency_key: str | None = None) -> T:
        """Bring money into a buyer's wallet (admin): POST /buyers/{id}/top-ups."""
        path = f"/buyers/{_seg(buyer_id)}/top-ups"
        body = {"amount_minor": amount_minor}
        return self._send(mutation("POST", path, body, admin=True, idempotency_key=idempotency_key))

    # --- anyone ------------------------------------------------------------------------

    def health(self) -> T:
        """Liveness: GET /health."""
        return self._send(read("/health"))

    def availability(self, event_id: str) -> T:
        """What an event has left: GET /events/{id}."""
        return self._send(read(f"/events/{_seg(event_id)}"))

    def seat_map(self, event_id: str) -> T:
        """Every seat of an event and whether it is free: GET /events/{id}/seats."""
        return self._send(read(f"/events/{_seg(event_id)}/seats"))

    # --- buyer -------------------------------------------------------------------------

    def purchase(
        self,
        event_id: str,
        *,
        seat_ids: Sequence[str] | None = None,
        pool: str | None = None,
        section: str | None = None,
        quantity: int | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """Quick buy (claim, pay, confirm): POST /purchases; 202 while payment is pending."""
        body = claim_body(
            event_id, seat_ids=seat_ids, pool=pool, section=section, quantity=quantity
        )
        return self._send(mutation("POST", "/purchases", body, idempotency_key=idempotency_key))

    def place_hold(
        self,
        event_id: str,
        *,
        seat_ids: Sequence[str] | None = None,
        pool: str | None = None,
        section: str | None = None,
        quantity: int | None = None,
        ttl_s: int | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """Claim inventory for `ttl_s` seconds: POST /holds."""
        body = claim_body(
            event_id, seat_ids=seat_ids, pool=pool, section=section, quantity=quantity
        )
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self._send(mutation("POST", "/holds", body, idempotency_key=idempotency_key))

    def hold(self, hold_id: str) -> T:
        """One of the caller's holds: GET /holds/{id}."""
        return self._send(read(f"/holds/{_seg(hold_id)}"))

    def pay_hold(self, hold_id: str, *, idempotency_key: str | None = None) -> T:
        """Pay for a hold: POST /holds/{id}/order; 202 while payment is pending."""
        path = f"/holds/{_seg(hold_id)}/order"
        return self._send(mutation("POST", path, idempotency_key=idempotency_key))

    def release_hold(self, hold_id: str, *, idempotency_key: str | None = None) -> T:
        """Give a hold's inventory back: DELETE /holds/{id}."""
        path = f"/holds/{_seg(hold_id)}"
        return self._send(mutation("DELETE", path, idempotency_key=idempotency_key))

    def cancel_order(self, order_id: str, *, idempotency_key: str | None = None) -> T:
        """Refund a confirmed order: POST /orders/{id}/cancel."""
        path = f"/orders/{_seg(order_id)}/cancel"
        return self._send(mutation("POST", path, idempotency_key=idempotency_key))

    def order(self, order_id: str) -> T:
        """One of the caller's orders with its tickets: GET /orders/{id}."""
        return self._send(read(f"/orders/{_seg(order_id)}"))

    def orders(self) -> T:
        """The caller's orders, newest first: GET /orders."""
        return self._send(read("/orders"))

    def tickets(self) -> T:
        """The caller's tickets: GET /tickets."""
        return self._send(read("/tickets"))

    def wallet(self) -> T:
        """The caller's balance: GET /wallet."""
        return self._send(read("/wallet"))
