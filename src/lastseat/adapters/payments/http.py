"""The external payment provider over HTTP: retries with the same key, unknown outcomes named.

A charge whose answer is lost is the dangerous case: the provider may have captured. So every
retry re-sends the *same* Idempotency-Key, and the provider replays its stored answer instead
of charging again::

    us:       POST /v1/payments  key=K  ---------> captured, answer lost (timeout)
    us:       POST /v1/payments  key=K  ---------> replay: the same payment, no second capture

When every attempt fails the outcome stays unknown (PaymentUnknownError): the caller retries
later with the same key, or the reconciler asks `find_charge(K)`. A decline (402) is an answer,
not an error. One httpx.Client is shared by all threads (its pool is thread-safe); the
statistics are guarded by a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from lastseat.domain.errors import PaymentProviderError, PaymentUnknownError, ValidationError
from lastseat.domain.money import Money
from lastseat.service.payments import Charge, ChargeStatus, Refund

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_ATTEMPTS = 3
_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class _RetryableAnswerError(Exception):
    """The provider answered, but with a status that says "not processed, try again"."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"provider answered {response.status_code}")
        self.response = response


@dataclass(slots=True)
class PaymentStatistics:
    """What the adapter did: calls made, HTTP attempts, retries, and how calls ended."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    unknown: int = 0
    declines: int = 0
    provider_errors: int = 0


class HttpPaymentProvider:
    """The PaymentProvider port over the provider's HTTP API (`lastseat payments serve`)."""

    name = "external"
    transactional = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_base_s: float = 0.05,
        backoff_max_s: float = 1.0,
        max_connections: int = 64,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self._backoff = wait_random_exponential(multiplier=backoff_base_s, max=backoff_max_s)
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )
        self._stats = PaymentStatistics()
        self._stats_lock = threading.Lock()

    def charge(self, payment_key: str, buyer_id: str, amount: Money) -> Charge:
        """Authorize and capture `amount` from the buyer, once per `payment_key`."""
        body = {
            "customer": buyer_id,
            "amount_minor": amount.amount_minor,
            "currency": amount.currency,
            "capture": True,
        }
        response = self._send("POST", "/v1/payments", json=body, key=payment_key)
        if response.status_code == 402:
            self._count(declines=1)
            document = _json(response)
            return Charge(
                payment_key,
                ChargeStatus.DECLINED,
                document.get("payment_id") or document.get("id"),
                amount,
                document.get("decline_code") or "declined",
            )
        return _captured(payment_key, self._expect(response, 200, 201))

    def refund(self, refund_key: str, payment_id: str, amount: Money) -> Refund:
        """Give `amount` of a captured payment back, once per `refund_key`."""
        body = {"payment_id": payment_id, "amount_minor": amount.amount_minor}
        response = self._send("POST", "/v1/refunds", json=body, key=refund_key)
        document = self._expect(response, 200, 201)
        try:
            return Refund(
                refund_key,
                str(document["id"]),
                str(document["payment_id"]),
                Money(int(document["amount_minor"]), str(document["currency"])),
            )
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise PaymentProviderError(f"malformed refund from the provider: {exc}") from exc

    def find_charge(self, payment_key: str) -> Charge | None:
        """What the provider holds for `payment_key` (for reconciliation), or None if nothing."""
        response = self._send("GET", "/v1/payments", params={"idempotency_key": payment_key})
        if response.status_code == 404:
            return None
        return _charge_from(payment_key, self._expect(response, 200))

    def statistics(self) -> PaymentStatistics:
        """A copy of the counters."""
        with self._stats_lock:
            return PaymentStatistics(
                **{f.name: getattr(self._stats, f.name) for f in fields(self._stats)}
            )

    def close(self) -> None:
        """Release connections."""
        self._client.close()

    # -- internals ------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        """One call: up to `attempts` requests with the same key; unknown when all fail."""
        self._count(calls=1)
        headers = {"Idempotency-Key": key} if key is not None else None
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._backoff,
            retry=retry_if_exception_type((httpx.TransportError, _RetryableAnswerError)),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, path, json, params, headers)
        except (httpx.TransportError, _RetryableAnswerError) as exc:
            self._count(unknown=1)
            raise PaymentUnknownError(
                f"{method} {path}: no answer after {self.attempts} attempts ({exc})"
            ) from exc

    def _attempt(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None,
        params: dict[str, str] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        self._count(attempts=1)
        response = self._client.request(method, path, json=json, params=params, headers=headers)
        if response.status_code in _RETRYABLE_STATUSES:
            raise _RetryableAnswerError(response)
        return response

    def _expect(self, response: httpx.Response, *statuses: int) -> dict[str, Any]:
        if response.status_code in statuses:
            return _json(response)
        self._count(provider_errors=1)
        detail = response.text[:300]
        raise PaymentProviderError(
            f"provider refused {response.request.method} {response.request.url.path}:"
            f" {response.status_code} {detail}"
        )

    def _count_retry(self, state: RetryCallState) -> None:
        self._count(retries=1)

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError as exc:
        raise PaymentProviderError(
            f"provider answered {response.status_code} without JSON"
        ) from exc
    if not isinstance(document, dict):
        raise PaymentProviderError("provider answered with a JSON document that is not an object")
    return document


def _captured(payment_key: str, document: dict[str, Any]) -> Charge:
    charge = _charge_from(payment_key, document)
    if charge.status is not ChargeStatus.CAPTURED:
        raise PaymentProviderError(f"payment {charge.payment_id} is {document.get('status')}")
    return charge


def _charge_from(payment_key: str, document: dict[str, Any]) -> Charge:
    """A Charge from a payment object: captured, or declined; anything else is a bug."""
    try:
        amount = Money(int(document["amount_minor"]), str(document["currency"]))
        status = document["status"]
        payment_id = str(document["id"])
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise PaymentProviderError(f"malformed payment from the provider: {exc}") from exc
    if status == "captured":
        return Charge(payment_key, ChargeStatus.CAPTURED, payment_id, amount)
    if status == "declined":
        code = document.get("decline_code")
        return Charge(payment_key, ChargeStatus.DECLINED, payment_id, amount, code)
    raise PaymentProviderError(f"payment {payment_id} is {status}, neither captured nor declined")
