"""The asyncio shell: sends what the core asks for with an `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Coroutine
from random import Random
from types import TracebackType
from typing import Any, Self

import httpx

from lastseat.client._api import ApiMethods
from lastseat.client._core import Fail, Finish, OrderWait, RequestSpec, Retrier
from lastseat.client._sync import DEFAULT_TIMEOUT_S, DEFAULT_WAIT_S
from lastseat.client.models import ClientStatistics, Result
from lastseat.client.retry import DEFAULT_RETRY_POLICY, RetryBudget, RetryPolicy


class AsyncLastseatClient(ApiMethods[Coroutine[Any, Any, Result]]):
    """An asyncio client of the lastseat API, with the same methods as `LastseatClient`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        admin_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        budget: RetryBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Random | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._owns_http = True
        self._token = token
        self._admin_key = admin_key
        self._clock = clock
        self._sleep = sleep
        self._retrier = Retrier(
            retry,
            budget if budget is not None else RetryBudget(clock=clock),
            rng if rng is not None else Random(),
        )

    def with_token(self, token: str) -> Self:
        """A client acting as another buyer, sharing connections, retry budget and statistics."""
        other = copy.copy(self)
        other._token = token
        other._owns_http = False
        return other

    def statistics(self) -> ClientStatistics:
        """Calls, HTTP requests, retries, transport errors, refused retries, replays seen."""
        return self._retrier.statistics()

    async def wait_for_order(self, order_id: str, timeout_s: float = DEFAULT_WAIT_S) -> Result:
        """Poll GET /orders/{id} while it is `pending_payment`; the final order, or a timeout."""
        wait = OrderWait(order_id, timeout_s, self._clock())
        while True:
            result = await self.order(order_id)
            pause = wait.after(result, self._clock())
            if pause is None:
                return result
            await self._sleep(pause)

    async def _send(self, spec: RequestSpec) -> Result:
        exchange = self._retrier.start(spec)
        headers = spec.headers(token=self._token, admin_key=self._admin_key)
        while True:
            exchange.begin()
            try:
                answer = await self._http.request(
                    spec.method, spec.path, json=spec.json, headers=headers
                )
            except httpx.TransportError as exc:
                step = exchange.on_transport_error(exc)
            else:
                step = exchange.on_response(answer.status_code, answer.headers, answer.content)
            if isinstance(step, Finish):
                return step.result
            if isinstance(step, Fail):
                raise step.error
            await self._sleep(step.delay_s)

    async def aclose(self) -> None:
        """Close the connections (a `with_token` copy leaves them to its origin)."""
        if self._owns_http:
            await self._http.aclose()

    async def close(self) -> None:
        """The same as `aclose`."""
        await self.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
