"""A server paying through the external provider says on /metrics what the provider answered."""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lastseat.adapters.payments.admin import ProviderAdmin
from lastseat.adapters.payments.server import ThrowawayProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from api_helpers import Api, seat, server_env, serving


def _payment_counters(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("lastseat_payments_") and sample.name.endswith("_total"):
                assert sample.labels == {"provider": "external"}
                found[sample.name] = sample.value
    return found


def test_captures_and_declines_are_counted_on_metrics(tmp_path: Path) -> None:
    db = str(tmp_path / "shop.db")
    with ThrowawayProvider(seed=5) as provider:
        env = server_env(
            db,
            LASTSEAT_PAYMENTS="external",
            LASTSEAT_PROVIDER_URL=provider.url,
            LASTSEAT_PROVIDER_API_KEY=provider.api_key,
        )
        with (
            serving(db, tmp_path / "server.log", env=env) as server,
            ProviderAdmin(provider.url, provider.api_key) as admin,
        ):
            api = Api(server)
            event_id = api.event(rows=1, seats_per_row=2)
            _, headers = api.buyer()
            bought = api.buy(headers, {"event_id": event_id, "seat_ids": [seat(event_id)]})
            assert bought.status_code == 201, bought.text
            admin.set_faults(decline_rate=1.0)
            declined = api.buy(headers, {"event_id": event_id, "seat_ids": [seat(event_id, 1, 2)]})
            assert declined.status_code == 402, declined.text
            counters = _payment_counters(api.http.get("/metrics").text)
            api.close()
    assert counters["lastseat_payments_charges_total"] == 2
    assert counters["lastseat_payments_captured_total"] == 1
    assert counters["lastseat_payments_declined_total"] == 1
    assert counters.get("lastseat_payments_unknown_total", 0) == 0
