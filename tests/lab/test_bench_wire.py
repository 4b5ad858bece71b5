"""The bench's lean HTTP client against a scripted server: keep-alive, closed connections, and
a retryable answer sent again with the same Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable

from lastseat.domain.holds import PoolClaim
from lastseat.domain.money import Money
from lastseat.lab import http_load
from lastseat.lab.http_load import HttpPart
from lastseat.lab.scenarios import BuyerPlan
from lastseat.lab.wire import WireConnection

Script = list[tuple[int, dict[str, str], object, bool]]  # status, headers, body, close after


async def _serve(script: Script, seen: list[bytes]) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while script:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            seen.append(head + await reader.readexactly(length))
            status, headers, body, close = script.pop(0)
            data = json.dumps(body).encode()
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            connection = "close" if close else "keep-alive"
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n{extra}"
                f"Connection: {connection}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            if close:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _run(script: Script, test: Callable[[int], Awaitable[None]]) -> list[bytes]:
    seen: list[bytes] = []

    async def main() -> None:
        server, port = await _serve(script, seen)
        async with server:
            await test(port)

    asyncio.run(main())
    return seen


def test_answers_come_back_in_order_on_one_connection_and_after_the_server_closed_it() -> None:
    script: Script = [
        (201, {}, {"n": 1}, False),
        (201, {}, {"n": 2}, True),
        (201, {}, {"n": 3}, False),
    ]
    bodies: list[object] = []

    async def test(port: int) -> None:
        conn = WireConnection("127.0.0.1", port)
        for _ in range(3):
            answer = await conn.post("/x", b"", b"{}")
            bodies.append(json.loads(answer.body))
        conn.close()

    _run(script, test)

    assert bodies == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_an_overloaded_answer_is_sent_again_with_the_same_key_then_recorded_once() -> None:
    problem = {"type": "https://lastseat.dev/problems/overloaded"}
    sold = {"order": {"order_id": "ord-1"}, "tickets": [{"code": "c1"}]}
    script: Script = [(503, {"Retry-After": "0"}, problem, False), (201, {}, sold, False)]
    plan = BuyerPlan("buyer-1", PoolClaim("race", "race/standing", 1), Money(2_500, "EUR"))
    part = HttpPart()

    async def test(port: int) -> None:
        conn = WireConnection("127.0.0.1", port)
        request = http_load._prepare(b"s" * 32, plan)
        await http_load._buy(0, conn, request, part, random.Random(1))
        conn.close()

    seen = _run(script, test)

    keys = {line for r in seen for line in r.split(b"\r\n") if line.startswith(b"Idempotency-Key")}
    assert len(seen) == 2 and len(keys) == 1
    assert part.retries == 1
    assert [(op.type, op.order_id, op.ticket_codes) for op in part.operations] == [
        ("invoke", None, ()),
        ("ok", "ord-1", ("c1",)),
    ]
