"""Helpers of the payment-provider tests: adapters and admin clients for a provider process."""

from __future__ import annotations

from lastseat.adapters.payments.admin import ProviderAdmin
from lastseat.adapters.payments.http import HttpPaymentProvider
from lastseat.adapters.payments.server import ThrowawayProvider
from lastseat.domain.money import Money

TEN_EUROS = Money(1000, "EUR")


def adapter_for(
    server: ThrowawayProvider, *, timeout_s: float = 5.0, attempts: int = 3
) -> HttpPaymentProvider:
    """An adapter with fast retries (the backoff is not under test)."""
    return HttpPaymentProvider(
        server.url,
        server.api_key,
        timeout_s=timeout_s,
        attempts=attempts,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )


def admin_for(server: ThrowawayProvider) -> ProviderAdmin:
    """The provider's admin client."""
    return ProviderAdmin(server.url, server.api_key)
