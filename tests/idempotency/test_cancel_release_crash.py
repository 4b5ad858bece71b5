"""A cancel or a release whose server is SIGKILLed after it committed, retried with its key.

    doomed server:  begin(key) -> cancel / release -> COMMIT -> store the answer ... SIGKILL
    client:         (no answer) -> retry, same key, on another server: 409 in progress until
                    the dead attempt's lease ends -> takeover (attempt 2) runs the route again

The re-run used to find the order refunded (or the hold released) and answer 409
invalid-state, which the key then stored as final and replayed forever although the cancel
had succeeded. Now the re-run resumes the earlier attempt's work and answers the success.

Where the server dies is forced, not timed. Over the wallet (PostgreSQL) a trigger makes the
storing of this one key's answer wait on an advisory lock the test holds: the route has
committed, its answer is not stored, and the test kills the server right there. Through an
external provider (SQLite) the refund request hangs at the provider after the cancel
committed, and the test kills the server while it waits.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from api_helpers import Api, Server, seat, server_env, serving, uid
from psycopg import sql

from lastseat.adapters.payments.admin import ProviderAdmin
from lastseat.adapters.payments.server import ThrowawayProvider
from lastseat.adapters.postgres.server import ThrowawayPostgres

PRICE = 1_000
FUNDS = 100_000
LEASE_MS = "1500"  # the dead attempt's key is taken over this long after its last renewal
WAIT_S = 60.0
GATE_LOCK = 808_808  # the advisory lock the answer gate waits on


@dataclass(frozen=True)
class Operation:
    """One of the two requests under test: how to set it up, send it, and what success is."""

    name: str
    method: str
    success: str

    def status_in(self, body: dict[str, Any]) -> str:
        """The status an answer gives: the order's (a cancel answers the order with its
        tickets) or the hold's."""
        return str(body["order"]["status"] if self is CANCEL else body["status"])


CANCEL = Operation("cancel", "POST", "refunded")
RELEASE = Operation("release", "DELETE", "released")


def _eventually(condition: Callable[[], Any], what: str) -> Any:
    """Poll another process's state until `condition` is truthy; return its value."""
    deadline = time.monotonic() + WAIT_S
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)
    return found


def _send(server: Server, method: str, path: str, headers: dict[str, str]) -> object:
    try:
        return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=WAIT_S)
    except httpx.TransportError as exc:
        return exc


def _retry_until_taken_over(
    client: httpx.Client, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    """Resend with the same key while the dead attempt's lease still holds the key."""
    deadline = time.monotonic() + WAIT_S
    answer = client.request(method, path, headers=headers)
    while answer.status_code == 409 and "request-in-progress" in answer.text:
        assert time.monotonic() < deadline, "the key stayed in progress"
        time.sleep(0.1)  # the lease is the other process's clock; we only poll it
        answer = client.request(method, path, headers=headers)
    return answer


def _kill(server: Server, dying: Any) -> None:
    os.kill(server.proc.pid, signal.SIGKILL)
    assert isinstance(dying.result(WAIT_S), httpx.TransportError)  # it never answered


# -- over the wallet, on PostgreSQL: the answer's storing is held at a gate ----------------------


class AnswerGate:
    """While open (held), storing the answer of one Idempotency-Key waits on a lock."""

    def __init__(self, dsn: str, key: str) -> None:
        self.dsn = dsn
        self.key = key

    def waiting_pid(self) -> int | None:
        """The backend whose answer-storing waits at the gate, if one does."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = %s AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                (GATE_LOCK,),
            ).fetchone()
        return None if row is None else int(row[0])

    def end_backend(self, pid: int) -> None:
        """The killed server's connection: end it, so its answer is rolled back for sure."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

            def gone() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                return row is not None and row[0] == 0

            _eventually(gone, "the dead server's backend is gone")


@contextmanager
def answer_gate(dsn: str, key: str) -> Iterator[AnswerGate]:
    """A trigger on storing `key`'s answer that waits for an advisory lock this test holds."""
    function = sql.SQL(
        "CREATE FUNCTION lastseat_test_gate() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_advisory_xact_lock({lock}); RETURN NEW; END $$"
    ).format(lock=sql.Literal(GATE_LOCK))
    trigger = sql.SQL(
        "CREATE TRIGGER lastseat_test_gate BEFORE UPDATE ON idempotency_keys FOR EACH ROW"
        " WHEN (NEW.idempotency_key = {key} AND OLD.status IS NULL AND NEW.status IS NOT NULL)"
        " EXECUTE FUNCTION lastseat_test_gate()"
    ).format(key=sql.Literal(key))
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (GATE_LOCK,))
        holder.execute(function)
        holder.execute(trigger)
        try:
            yield AnswerGate(dsn, key)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (GATE_LOCK,))
            holder.execute("DROP TRIGGER lastseat_test_gate ON idempotency_keys")
            holder.execute("DROP FUNCTION lastseat_test_gate()")


def _target(api: Api, operation: Operation, headers: dict[str, str], event_id: str) -> str:
    """Buy an order to cancel, or place a hold to release; the path to send the request to."""
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    if operation is CANCEL:
        bought = api.http.post("/purchases", headers=headers, json=claim)
        assert bought.status_code == 201, bought.text
        return f"/orders/{bought.json()['order']['order_id']}/cancel"
    placed = api.http.post("/holds", headers=headers, json=claim)
    assert placed.status_code == 201, placed.text
    return f"/holds/{placed.json()['hold_id']}"


def _committed(client: httpx.Client, operation: Operation, path: str) -> bool:
    """What the doomed server did is visible to another: the order refunded, hold released."""
    return operation.status_in(client.get(path.removesuffix("/cancel")).json()) == (
        operation.success
    )


@pytest.mark.parametrize("operation", [CANCEL, RELEASE], ids=lambda o: o.name)
def test_a_retry_of_a_committed_request_whose_server_died_gets_its_success_answer(
    pg_server: ThrowawayPostgres, tmp_path: Path, operation: Operation
) -> None:
    db = pg_server.create_database(f"crash_after_{operation.name}")
    env = server_env(db, LASTSEAT_IDEMPOTENCY_LEASE_MS=LEASE_MS)
    with ExitStack() as stack:
        doomed = stack.enter_context(serving(db, tmp_path / "doomed.log", env=env))
        survivor = stack.enter_context(serving(db, tmp_path / "survivor.log", env=env))
        api = Api(survivor)
        stack.callback(api.close)
        event_id = api.event(price_minor=PRICE)
        _, headers = api.buyer(FUNDS)
        path = _target(api, operation, headers, event_id)
        key = uid("key")
        sent = {**headers, "Idempotency-Key": key}
        client = stack.enter_context(httpx.Client(base_url=survivor.url, headers=headers))

        with answer_gate(db, key) as gate, ThreadPoolExecutor(1) as pool:
            dying = pool.submit(_send, doomed, operation.method, path, sent)
            pid = _eventually(gate.waiting_pid, "the doomed server stores its answer")
            assert _committed(client, operation, path)  # done, but not answered
            _kill(doomed, dying)
            gate.end_backend(pid)

        answer = _retry_until_taken_over(client, operation.method, path, sent)
        assert answer.status_code == 200, answer.text
        assert operation.status_in(answer.json()) == operation.success
        assert "idempotent-replayed" not in answer.headers  # attempt 2 ran it
        replayed = client.request(operation.method, path, headers=sent)
        assert replayed.headers.get("idempotent-replayed") == "true"
        assert replayed.content == answer.content
        # Done once: the money came back once, the seat is free once.
        assert client.get("/wallet").json()["balance_minor"] == FUNDS
        assert api.http.get(f"/events/{event_id}").json()["seats_available"] == 6


# -- through an external provider, on SQLite: the refund hangs after the cancel committed -------


@pytest.fixture
def provider() -> Iterator[ThrowawayProvider]:
    with ThrowawayProvider(seed=8) as running:
        yield running


def test_a_cancel_retried_after_its_server_died_awaiting_the_refund_answers_refunded(
    provider: ThrowawayProvider, tmp_path: Path
) -> None:
    db = str(tmp_path / "shop.db")
    env = server_env(
        db,
        LASTSEAT_PAYMENTS="external",
        LASTSEAT_PROVIDER_URL=provider.url,
        LASTSEAT_PROVIDER_API_KEY=provider.api_key,
        LASTSEAT_PROVIDER_TIMEOUT_MS="60000",  # waits on the hung refund until killed
        LASTSEAT_PAYMENT_LEASE_MS="1000",
        LASTSEAT_IDEMPOTENCY_LEASE_MS=LEASE_MS,
        LASTSEAT_RECONCILE_INTERVAL_MS="0",  # only the retried request may drive the refund
    )
    with ExitStack() as stack:
        admin = stack.enter_context(ProviderAdmin(provider.url, provider.api_key))
        doomed = stack.enter_context(serving(db, tmp_path / "doomed.log", env=env))
        api = Api(doomed)
        stack.callback(api.close)
        event_id = api.event(price_minor=PRICE)
        _, headers = api.buyer(FUNDS)
        order_id = _target(api, CANCEL, headers, event_id).split("/")[2]
        path = f"/orders/{order_id}/cancel"
        sent = {**headers, "Idempotency-Key": uid("key")}

        admin.set_faults(slow_rate=1.0, slow_ms=600_000)
        with ThreadPoolExecutor(1) as pool:
            dying = pool.submit(_send, doomed, "POST", path, sent)
            _eventually(lambda: admin.counters()["slow"] == 1, "the refund request hangs")
            _kill(doomed, dying)
        admin.set_faults(slow_rate=0.0)
        assert admin.refunds() == []  # the order is refunded in our books, not yet paid back

        survivor = stack.enter_context(serving(db, tmp_path / "survivor.log", env=env))
        client = stack.enter_context(httpx.Client(base_url=survivor.url, headers=headers))
        answer = _retry_until_taken_over(client, "POST", path, sent)
        assert answer.status_code == 200, answer.text
        assert answer.json()["order"]["status"] == "refunded"
        (captured,) = admin.payments()
        refunds = [r for r in admin.refunds() if r.payment_id == captured.payment_id]
        assert len(refunds) == 1  # the retry drove the refund the dead attempt never sent

        # A cancel with a new key: the order as it stands, nothing refunded twice.
        again = client.post(path, headers={"Idempotency-Key": uid("key")})
        assert again.status_code == 200, again.text
        assert again.json()["order"]["status"] == "refunded"
        assert len(admin.refunds()) == 1
