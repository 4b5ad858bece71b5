"""Start `lastseat serve` as a real process, and talk to it like a client would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lastseat.adapters.postgres.server import free_port

ADMIN_KEY = "test-admin-key-not-secret-0123"
TOKEN_SECRET = "test-token-secret-not-secret-0123"
START_TIMEOUT_S = 60.0
PROBLEM = "application/problem+json"
# What a server log must never contain: a crash answered 500, or a secret.
FORBIDDEN_IN_LOG = (
    "Traceback",
    "Exception in ASGI application",
    "unexpected ",
    ADMIN_KEY,
    TOKEN_SECRET,
)


def uid(prefix: str) -> str:
    """A fresh id, so tests sharing one server never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def server_env(db: str, **extra: str) -> dict[str, str]:
    """The environment of a test server."""
    return {
        **os.environ,
        "LASTSEAT_DB": db,
        "LASTSEAT_ADMIN_KEY": ADMIN_KEY,
        "LASTSEAT_TOKEN_SECRET": TOKEN_SECRET,
        "LASTSEAT_CACHE_TTL_MS": "0",
        **extra,
    }


@dataclass
class Server:
    """A running `lastseat serve` process."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serving(db: str, log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m lastseat serve` on a free port until the block ends; waits for /health."""
    port = free_port()
    command = [sys.executable, "-m", "lastseat", "serve", "--port", str(port), *args]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command, env=env or server_env(db), stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not become healthy:\n{server.log_text()[-3000:]}")


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(ADMIN_KEY)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def idempotency_key() -> dict[str, str]:
    """A fresh Idempotency-Key header."""
    return {"Idempotency-Key": str(uuid.uuid4())}


def _add_idempotency_key(request: httpx.Request) -> None:
    """Give every mutating request a fresh key unless the test chose its own."""
    if request.method in MUTATING and "idempotency-key" not in request.headers:
        request.headers["Idempotency-Key"] = str(uuid.uuid4())


def keyed_client(url: str, timeout: float = 30.0) -> httpx.Client:
    """An httpx client that sends a fresh Idempotency-Key with each mutating request."""
    return httpx.Client(
        base_url=url, timeout=timeout, event_hooks={"request": [_add_idempotency_key]}
    )


class Api:
    """An httpx client for one server, with shortcuts for the set-up steps.

    Mutating requests get a fresh Idempotency-Key each, unless the test passes its own.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = keyed_client(server.url)

    def close(self) -> None:
        self.http.close()

    def event(
        self,
        *,
        rows: int = 2,
        seats_per_row: int = 3,
        capacity: int = 10,
        price_minor: int = 1000,
        currency: str = "EUR",
    ) -> str:
        """A new event with one seat block `A` and one pool `standing`; its id."""
        event_id = uid("ev")
        answer = self.http.post(
            "/events",
            headers=ADMIN,
            json={
                "event_id": event_id,
                "name": "Test show",
                "currency": currency,
                "seat_blocks": [
                    {
                        "section": "A",
                        "rows": rows,
                        "seats_per_row": seats_per_row,
                        "price_minor": price_minor,
                    }
                ],
                "pools": [{"name": "standing", "capacity": capacity, "price_minor": price_minor}],
            },
        )
        assert answer.status_code == 201, answer.text
        return event_id

    def buyer(
        self, funds_minor: int = 100_000, currency: str = "EUR"
    ) -> tuple[str, dict[str, str]]:
        """A new buyer with a funded wallet: its id and Authorization header."""
        buyer_id = uid("buyer")
        answer = self.http.post(
            "/buyers", headers=ADMIN, json={"buyer_id": buyer_id, "currency": currency}
        )
        assert answer.status_code == 201, answer.text
        if funds_minor:
            topped = self.http.post(
                f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json={"amount_minor": funds_minor}
            )
            assert topped.status_code == 200, topped.text
        return buyer_id, bearer(answer.json()["token"])

    def buy(self, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
        return self.http.post("/purchases", headers=headers, json=body)


def seat(event_id: str, row: int = 1, number: int = 1) -> str:
    """The id of a seat in section A."""
    return f"{event_id}/A/{row:04d}/{number:04d}"


def assert_problem(answer: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The answer is a problem document of this status and type."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"https://lastseat.dev/problems/{slug}", body
    assert body["status"] == status
    assert body["title"]
    assert isinstance(body["detail"], str)
    return body
