"""The blocking shell: sends what the core asks for with an `httpx.Client`, sleeps between tries."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from random import Random
from types import TracebackType
from typing import Self

import httpx

from lastseat.client._api import ApiMethods
from lastseat.client._core import Fail, Finish, OrderWait, RequestSpec, Retrier
from lastseat.client.models import ClientStatistics, Result
from lastseat.client.retry import DEFAULT_RETRY_POLICY, RetryBudget, RetryPolicy

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 30.0


class LastseatClient(ApiMethods[Result]):
    """A blocking client of the lastseat API; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        admin_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        budget: RetryBudget | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Random | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)
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

    def wait_for_order(self, order_id: str, timeout_s: float = DEFAULT_WAIT_S) -> Result:
        """Poll GET /orders/{id} while it is `pending_payment`; the final order, or a timeout."""
        wait = OrderWait(order_id, timeout_s, self._clock())
        while True:
            result = self.order(order_id)
            pause = wait.after(result, self._clock())
            if pause is None:
                return result
            self._sleep(pause)

    def _send(self, spec: RequestSpec) -> Result:
        exchange = self._retrier.start(spec)
        headers = spec.headers(token=self._token, admin_key=self._admin_key)
        while True:
            exchange.begin()
            try:
                answer = self._http.request(spec.method, spec.path, json=spec.json, headers=headers)
            except httpx.TransportError as exc:
                step = exchange.on_transport_error(exc)
            else:
                step = exchange.on_response(answer.status_code, answer.headers, answer.content)
            if isinstance(step, Finish):
                return step.result
            if isinstance(step, Fail):
                raise step.error
            self._sleep(step.delay_s)

    def close(self) -> None:
        """Close the connections (a `with_token` copy leaves them to its origin)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
