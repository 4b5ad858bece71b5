"""A lean HTTP/1.1 keep-alive client for the bench's load generator (asyncio + httptools).

The bench must measure the servers, not its own buyers. Measured on a 2-core machine against a
trivial ASGI app (CPU of the client process per request): httpx's AsyncClient ~1,400 µs,
aiohttp ~80 µs, this client ~10 µs. It speaks only what the bench sends: one request at a
time per connection, `Content-Length` bodies, answers parsed by httptools (the parser uvicorn
uses). Anything else - TLS, redirects, chunked requests, pipelining - it does not do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import httptools

CONNECT_TIMEOUT_S = 10.0


class WireError(ConnectionError):
    """No complete answer arrived: the connection failed, closed or timed out."""


@dataclass(frozen=True, slots=True)
class WireAnswer:
    """One HTTP answer: status, the Retry-After header if any, the raw body."""

    status: int
    body: bytes
    retry_after: str | None = None


class _Protocol(asyncio.Protocol):
    """One connection: feeds received bytes to httptools, resolves the pending answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[WireAnswer] | None = None
        self.closed = False
        self._body: list[bytes] = []
        self._retry_after: str | None = None
        self._header = b""

    @property
    def open(self) -> bool:
        """True while requests can be sent (an answer with `Connection: close` closes it)."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(WireError(f"malformed answer: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(WireError(f"connection closed: {exc or 'by the server'}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer = WireAnswer(self.parser.get_status_code(), b"".join(self._body), self._retry_after)
        self._body, self._retry_after = [], None
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.transport.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _fail(self, error: WireError) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class WireConnection:
    """One keep-alive connection to `host:port`; reconnects before a request if it closed."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode("ascii")

    @classmethod
    def for_url(cls, url: str, timeout_s: float = 30.0) -> WireConnection:
        """A connection to an `http://host:port` base URL."""
        hostport = url.removeprefix("http://").rstrip("/")
        host, _, port = hostport.rpartition(":")
        return cls(host, int(port), timeout_s)

    async def post(self, path: str, headers: bytes, body: bytes) -> WireAnswer:
        """POST `body` (JSON) to `path` with extra header lines `headers` (each ending CRLF)."""
        protocol = await self._connected()
        head = (
            b"POST "
            + path.encode("ascii")
            + b" HTTP/1.1\r\n"
            + self._host_header
            + headers
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode("ascii")
            + b"\r\n\r\n"
        )
        waiter: asyncio.Future[WireAnswer] = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        assert protocol.transport is not None
        protocol.transport.write(head + body)
        try:
            return await asyncio.wait_for(waiter, self.timeout_s)
        except TimeoutError:
            self.close()
            raise WireError(f"no answer within {self.timeout_s:g} s") from None

    async def connect(self) -> None:
        """Open the connection now (else the first request opens it)."""
        await self._connected()

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.open:
            return protocol
        loop = asyncio.get_running_loop()
        try:
            _, fresh = await asyncio.wait_for(
                loop.create_connection(_Protocol, self.host, self.port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise WireError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._protocol = fresh
        return fresh


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop, set as this thread's current one: uvloop's where it is installed (it comes
    with uvicorn[standard]), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop
