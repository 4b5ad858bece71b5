"""The provider's HTTP API as any client sees it: auth, problem documents, captures, paging."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from provider_helpers import admin_for

from lastseat.adapters.payments.server import ThrowawayProvider

PROBLEM = "application/problem+json"


@pytest.fixture
def api(provider: ThrowawayProvider) -> Iterator[httpx.Client]:
    """A raw HTTP client with the provider's api key."""
    headers = {"Authorization": f"Bearer {provider.api_key}"}
    with httpx.Client(base_url=provider.url, headers=headers) as client:
        yield client


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}


def _payment(amount_minor: int = 500, capture: bool = True) -> dict[str, object]:
    return {"customer": "c", "amount_minor": amount_minor, "currency": "EUR", "capture": capture}


def _assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["status"] == status


def test_requests_without_the_api_key_are_refused(provider: ThrowawayProvider) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic x"}):
        response = httpx.get(f"{provider.url}/v1/payments", headers=headers)
        _assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{provider.url}/_faults").status_code == 401
    assert httpx.get(f"{provider.url}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"customer": "c", "amount_minor": 5, "currency": "EUR"}', {}, 400),  # no key
        (b"{not json", None, 400),
        (b'{"customer": "c", "amount_minor": "5", "currency": "EUR"}', None, 422),
        (b'{"customer": "c", "amount_minor": 0, "currency": "EUR"}', None, 422),
        (b'{"customer": "c", "amount_minor": true, "currency": "EUR"}', None, 422),
        (b'{"customer": "c", "amount_minor": 5, "currency": "euro"}', None, 422),
        (b'{"customer": "c", "amount_minor": 5, "currency": "EUR", "x": 1}', None, 422),
        (b"[]", None, 422),
        (b'{"customer": "' + b"c" * 20_000 + b'"}', None, 413),
    ],
)
def test_bad_payment_requests_get_a_4xx_problem_and_charge_nothing(
    api: httpx.Client, content: bytes, headers: dict[str, str] | None, status: int
) -> None:
    before = len(api.get("/v1/payments").json()["data"])
    sent = {"content-type": "application/json", **(_key() if headers is None else headers)}
    response = api.post("/v1/payments", content=content, headers=sent)
    _assert_problem(response, status)
    assert len(api.get("/v1/payments").json()["data"]) == before


def test_a_body_that_is_not_json_is_refused(api: httpx.Client) -> None:
    response = api.post("/v1/payments", data={"customer": "c"}, headers=_key())
    _assert_problem(response, 415)


def test_unknown_payments_and_keys_are_404_problems(api: httpx.Client) -> None:
    _assert_problem(api.get("/v1/payments/pay_nope"), 404)
    _assert_problem(api.get("/v1/payments", params={"idempotency_key": "never-used"}), 404)
    _assert_problem(api.post("/v1/payments/pay_nope/capture", headers=_key()), 404)
    _assert_problem(api.get("/v1/nothing-here"), 404)


def test_an_authorized_payment_is_captured_once(api: httpx.Client) -> None:
    created = api.post("/v1/payments", json=_payment(capture=False), headers=_key())
    assert created.status_code == 201
    payment = created.json()
    assert (payment["status"], payment["captures"]) == ("authorized", 0)
    capture_key = _key()

    captured = api.post(f"/v1/payments/{payment['id']}/capture", headers=capture_key)
    replayed = api.post(f"/v1/payments/{payment['id']}/capture", headers=capture_key)
    second = api.post(f"/v1/payments/{payment['id']}/capture", headers=_key())

    assert captured.status_code == 200
    assert (captured.json()["status"], captured.json()["captures"]) == ("captured", 1)
    assert replayed.json() == captured.json()
    assert replayed.headers["idempotent-replayed"] == "true"
    _assert_problem(second, 409)
    assert api.get(f"/v1/payments/{payment['id']}").json()["captures"] == 1


def test_a_refund_of_an_uncaptured_payment_is_refused(api: httpx.Client) -> None:
    payment = api.post("/v1/payments", json=_payment(capture=False), headers=_key()).json()
    refund = {"payment_id": payment["id"], "amount_minor": 1}
    _assert_problem(api.post("/v1/refunds", json=refund, headers=_key()), 409)
    missing = {"payment_id": "pay_nope", "amount_minor": 1}
    _assert_problem(api.post("/v1/refunds", json=missing, headers=_key()), 404)


def test_listings_page_through_every_record(api: httpx.Client, provider: ThrowawayProvider) -> None:
    for amount in (101, 102, 103):
        api.post("/v1/payments", json=_payment(amount), headers=_key())
    total = len(admin_for(provider).payments())

    seen: list[str] = []
    after = 0
    while True:
        page = api.get("/v1/payments", params={"after": after, "limit": 2}).json()
        assert len(page["data"]) <= 2
        seen += [item["id"] for item in page["data"]]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == total >= 3
    _assert_problem(api.get("/v1/payments", params={"limit": 0}), 422)
    _assert_problem(api.get("/v1/refunds", params={"after": -1}), 422)


def test_fault_settings_are_validated(api: httpx.Client) -> None:
    _assert_problem(api.put("/_faults", json={"decline_rate": 2}), 422)
    _assert_problem(api.put("/_faults", json={"outage": {"mode": "fire", "for_ms": 1}}), 422)
    _assert_problem(api.put("/_faults", json={"bogus": 1}), 422)
    assert api.get("/_faults").json()["config"]["decline_rate"] == 0.0
