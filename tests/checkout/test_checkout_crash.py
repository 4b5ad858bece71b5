"""kill -9 an app server between the provider's capture and our confirmation, then restart.

The provider captures and then holds its answer back (capture-then-timeout with a long hang)
while the server waits on it: the money is taken and the server has not confirmed. We SIGKILL
the server there. A new server over the same database reconciles once the dead request's
payment lease ends: the buyer ends up with a ticket or a refund, never neither, never both.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lastseat.adapters.payments.admin import ProviderAdmin
from lastseat.adapters.payments.server import ThrowawayProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from api_helpers import Api, Server, seat, server_env, serving

WAIT_S = 60.0
LEASE_MS = 1_500


@pytest.fixture
def provider() -> Iterator[ThrowawayProvider]:
    faults: dict[str, float | str] = {"capture_timeout_rate": 1.0, "hang_ms": 120_000}
    with ThrowawayProvider(seed=3, faults=faults) as running:
        yield running


def _env(db: str, provider: ThrowawayProvider, reconcile_ms: int) -> dict[str, str]:
    return server_env(
        db,
        LASTSEAT_PAYMENTS="external",
        LASTSEAT_PROVIDER_URL=provider.url,
        LASTSEAT_PROVIDER_API_KEY=provider.api_key,
        # The server waits on the hung capture far longer than the test takes to kill it.
        LASTSEAT_PROVIDER_TIMEOUT_MS="60000",
        LASTSEAT_PAYMENT_LEASE_MS=str(LEASE_MS),
        LASTSEAT_RECONCILE_INTERVAL_MS=str(reconcile_ms),
    )


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)  # polling another process's state, not ordering a race


def test_a_server_killed_between_capture_and_confirm_leaves_a_ticket_or_a_refund_never_neither(
    provider: ThrowawayProvider, tmp_path: Path
) -> None:
    db = str(tmp_path / "shop.db")
    admin = ProviderAdmin(provider.url, provider.api_key)
    # The first server never reconciles: only the restarted one may finish the order.
    with serving(db, tmp_path / "first.log", env=_env(db, provider, 0)) as first:
        api = Api(first)
        event_id = api.event(rows=1, seats_per_row=1)
        _, headers = api.buyer()
        body = {"event_id": event_id, "seat_ids": [seat(event_id)]}
        answers: list[object] = []
        buying = threading.Thread(target=lambda: answers.append(_buy(first, headers, body)))
        buying.start()
        _eventually(lambda: admin.counters()["capture_then_timeout"] == 1, "the capture is made")
        os.kill(first.proc.pid, signal.SIGKILL)  # captured, not confirmed: the gap
        buying.join(timeout=WAIT_S)
        api.close()
    assert answers and isinstance(answers[0], httpx.TransportError)
    (captured,) = [p for p in admin.payments() if p.status == "captured"]
    order_id = captured.idempotency_key.removeprefix("lastseat-pay-")

    admin.set_faults(capture_timeout_rate=0.0)
    second_env = _env(db, provider, 100)
    with (
        serving(db, tmp_path / "second.log", env=second_env) as second,
        httpx.Client(base_url=second.url, headers=headers, timeout=10) as client,
    ):
        _eventually(
            lambda: (
                client.get(f"/orders/{order_id}").json()["order"]["status"] != "pending_payment"
            ),
            "the restarted server reconciled the order",
        )
        order = client.get(f"/orders/{order_id}").json()
    refunds = [r for r in admin.refunds() if r.payment_id == captured.payment_id]
    tickets = [t for t in order["tickets"] if t["status"] == "valid"]
    confirmed = order["order"]["status"] == "confirmed"
    assert confirmed == bool(tickets)
    assert confirmed != bool(refunds)  # a ticket or a refund: never neither, never both
    assert confirmed  # the seat was still held for it, so the order completes
    assert [p.status for p in admin.payments()] == ["captured"]  # one capture, no second
    admin.close()


def _buy(server: Server, headers: dict[str, str], body: dict[str, object]) -> object:
    try:
        return httpx.post(
            f"{server.url}/purchases",
            headers={**headers, "Idempotency-Key": "crash-test-key"},
            json=body,
            timeout=WAIT_S,
        )
    except httpx.TransportError as exc:
        return exc
