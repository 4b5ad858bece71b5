"""The provider's admin side, for the race lab's checker and for tests: ledger reads and faults.

Nothing here retries: these calls are made while the provider is known to be up (a refuse
outage also refuses these), and a failure should be loud.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from lastseat.domain.errors import PaymentProviderError

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """One payment as the provider's ledger holds it."""

    payment_id: str
    idempotency_key: str
    customer: str
    amount_minor: int
    currency: str
    status: str  # authorized | captured | declined
    refunded_minor: int
    captures: int
    decline_code: str | None
    created: str


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """One refund as the provider's ledger holds it."""

    refund_id: str
    idempotency_key: str
    payment_id: str
    amount_minor: int
    currency: str
    created: str


class ProviderAdmin:
    """Reads the provider's whole ledger and reads or changes its faults."""

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )

    def payments(self) -> list[ProviderPayment]:
        """Every payment, oldest first."""
        return [_payment(item) for item in self._pages("/v1/payments")]

    def refunds(self) -> list[ProviderRefund]:
        """Every refund, oldest first."""
        return [_refund(item) for item in self._pages("/v1/refunds")]

    def payment_by_key(self, idempotency_key: str) -> ProviderPayment | None:
        """The payment made with this key, or None."""
        response = self._client.get("/v1/payments", params={"idempotency_key": idempotency_key})
        if response.status_code == 404:
            return None
        return _payment(_ok(response))

    def faults(self) -> dict[str, Any]:
        """The `/_faults` document: `config`, `outage`, `counters`."""
        return _ok(self._client.get("/_faults"))

    def counters(self) -> dict[str, int]:
        """The counters of faults actually injected, by kind."""
        counters: dict[str, int] = self.faults()["counters"]
        return counters

    def set_faults(self, **changes: float) -> dict[str, Any]:
        """Change fault knobs (latency_ms, decline_rate, capture_timeout_rate, ...)."""
        return _ok(self._client.put("/_faults", json=changes))

    def start_outage(self, mode: str, for_ms: float) -> dict[str, Any]:
        """Begin an outage window now: mode "503" or "refuse"; for_ms 0 ends an outage."""
        return _ok(self._client.put("/_faults", json={"outage": {"mode": mode, "for_ms": for_ms}}))

    def close(self) -> None:
        """Release connections."""
        self._client.close()

    def __enter__(self) -> ProviderAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            page = _ok(self._client.get(path, params={"after": after, "limit": PAGE_SIZE}))
            yield from page["data"]
            if not page["has_more"]:
                return
            after = int(page["next_after"])


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise PaymentProviderError(
            f"provider admin call {response.request.url.path} answered"
            f" {response.status_code}: {response.text[:300]}"
        )
    document: dict[str, Any] = response.json()
    return document


def _payment(item: dict[str, Any]) -> ProviderPayment:
    return ProviderPayment(
        payment_id=item["id"],
        idempotency_key=item["idempotency_key"],
        customer=item["customer"],
        amount_minor=item["amount_minor"],
        currency=item["currency"],
        status=item["status"],
        refunded_minor=item["refunded_minor"],
        captures=item["captures"],
        decline_code=item["decline_code"],
        created=item["created"],
    )


def _refund(item: dict[str, Any]) -> ProviderRefund:
    return ProviderRefund(
        refund_id=item["id"],
        idempotency_key=item["idempotency_key"],
        payment_id=item["payment_id"],
        amount_minor=item["amount_minor"],
        currency=item["currency"],
        created=item["created"],
    )
