"""Scripted HTTP answers for the client's unit tests, and a fake clock that sleeps instantly."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from random import Random
from typing import Any

import httpx

from lastseat.client import AsyncLastseatClient, LastseatClient, Result, RetryBudget, RetryPolicy

BASE_URL = "http://lastseat.test"
TOKEN = "buyer-token"
ADMIN_KEY = "admin-key"
PROBLEM_BASE = "https://lastseat.dev/problems/"

Answer = httpx.Response | type[httpx.TransportError] | Callable[[httpx.Request], httpx.Response]


def problem(status: int, slug: str, *, retry_after: str | None = None) -> httpx.Response:
    """A problem+json answer of this type."""
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    body = {"type": PROBLEM_BASE + slug, "title": slug, "status": status, "detail": f"{slug}!"}
    return httpx.Response(status, headers=headers, content=json.dumps(body).encode())


def order_body(order_id: str = "o-1", status: str = "confirmed") -> dict[str, Any]:
    """A purchase body: the order and its tickets."""
    return {"order": {"order_id": order_id, "status": status}, "tickets": []}


def ok(
    status: int = 201,
    body: dict[str, Any] | None = None,
    *,
    replayed: bool = False,
    location: str | None = None,
) -> httpx.Response:
    """A success answer."""
    headers = {}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if location is not None:
        headers["Location"] = location
    return httpx.Response(status, headers=headers, json=order_body() if body is None else body)


class Script:
    """A MockTransport handler: answers in order (the last one repeats), records requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type):
            raise answer("scripted failure", request=request)
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def keys(self) -> list[str | None]:
        """The Idempotency-Key of every request sent."""
        return [r.headers.get("Idempotency-Key") for r in self.requests]


class FakeClock:
    """Monotonic time that only moves when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def _roomy_budget(clock: Callable[[], float]) -> RetryBudget:
    return RetryBudget(min_retries_per_s=1000.0, clock=clock)


class Harness:
    """One sync or async client over a script; `call` runs a method either way."""

    def __init__(
        self,
        kind: str,
        script: Script,
        *,
        retry: RetryPolicy | None = None,
        budget: Callable[[Callable[[], float]], RetryBudget] | None = None,
    ) -> None:
        self.script = script
        self.clock = FakeClock()
        common: dict[str, Any] = {
            "token": TOKEN,
            "admin_key": ADMIN_KEY,
            "retry": retry or RetryPolicy(max_attempts=4, base_delay_s=0.05, max_delay_s=1.0),
            "budget": (budget or _roomy_budget)(self.clock.monotonic),
            "transport": httpx.MockTransport(script),
            "clock": self.clock.monotonic,
            "rng": Random(7),
        }
        self.client: LastseatClient | AsyncLastseatClient
        if kind == "sync":
            self.client = LastseatClient(BASE_URL, sleep=self.clock.sleep, **common)
        else:
            self.client = AsyncLastseatClient(BASE_URL, sleep=self.clock.async_sleep, **common)

    def as_buyer(self, token: str) -> None:
        """From now on, act as another buyer (a `with_token` copy of the client)."""
        self.client = self.client.with_token(token)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Result:
        """Run a client method to completion (an async one under asyncio.run)."""
        out = getattr(self.client, method)(*args, **kwargs)
        if inspect.iscoroutine(out):
            out = asyncio.run(out)
        assert isinstance(out, Result)
        return out
