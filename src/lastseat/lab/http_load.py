"""The bench's HTTP load generator: asyncio buyers over lean keep-alive connections.

A few OS processes (lab.loadprocs), each one event loop with its share of the connections
(lab.wire), spread over the servers. Everything a request needs - the buyer's token, the
Idempotency-Key, the JSON body - is made before the start barrier, so the measured window
holds only sending, waiting and recording. Two loads:

- purchases: every buyer plan once, `POST /purchases` with its own key; a retryable answer
  (503 overloaded, 409 request-in-progress or conflict, no answer) is sent again with the same
  key after full-jitter backoff (at least Retry-After), as the SDK does. Each attempt is
  recorded as history (invoke, then ok / fail / info) for the race lab's checker.
- the HTTP ceiling: `POST /bench/ceiling` (api.routes.ceiling: the same stack, no database
  work) in a loop for a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lastseat.domain.holds import PoolClaim, SeatClaim
from lastseat.lab.ceilings import Ceiling, Timed, ceiling_of
from lastseat.lab.history import BUY_ACTION, Operation, OpType
from lastseat.lab.loadprocs import LoadRun, run_load
from lastseat.lab.scenarios import BuyerPlan
from lastseat.lab.wire import WireAnswer, WireConnection, WireError, new_event_loop
from lastseat.service.auth import issue_token

# api.routes.ceiling's path and header (the lab sits below the api layer; a test ties them).
CEILING_PATH = "/bench/ceiling"
CEILING_TOKEN_HEADER = "X-Bench-Token"  # noqa: S105 - a header name
PURCHASE_PATH = "/purchases"
MAX_PROCESSES = 2
MAX_ATTEMPTS = 6
BASE_DELAY_S, MAX_DELAY_S, MAX_RETRY_AFTER_S = 0.05, 1.0, 2.0
REQUEST_TIMEOUT_S = 30.0
CEILING_BODY = {"event_id": "race", "pool": "standing", "quantity": 1}

# Problem types after which nothing was sold and nothing is left charged (client_buyer's).
_DEFINITE = {
    "unavailable": "unavailable",
    "insufficient-funds": "insufficient_funds",
    "payment-declined": "payment_declined",
    "hold-expired": "hold_expired",
    "conflict": "conflict",
    "overloaded": "busy",
    "not-found": "not_found",
}
_RETRYABLE = frozenset({"overloaded", "request-in-progress", "conflict", "unavailable-store"})


@dataclass(frozen=True, slots=True)
class HttpJob:
    """One load process's share (picklable): its buyers, or a ceiling run of `duration_s`."""

    process: int
    urls: tuple[str, ...]
    token_secret: bytes
    connections: int
    plans: tuple[BuyerPlan, ...] = ()
    duration_s: float = 0.0
    seed: int = 1


@dataclass(slots=True)
class HttpPart:
    """What one load process did."""

    operations: list[Operation] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    answered: int = 0  # ceiling: 201 answers


@dataclass(frozen=True, slots=True)
class HttpPurchases:
    """The purchases over HTTP: history, latencies, client retries and the load's CPU share."""

    history: list[Operation]
    latencies_ns: list[int]
    requests: int
    retries: int
    wall_s: float
    load_cpu_share: float
    machine_cpu_share: float | None


def jobs_for(
    urls: Sequence[str],
    token_secret: bytes,
    concurrency: int,
    *,
    plans: Sequence[BuyerPlan] = (),
    duration_s: float = 0.0,
    seed: int = 1,
) -> list[HttpJob]:
    """`concurrency` connections over at most MAX_PROCESSES processes; plans dealt out."""
    processes = max(1, min(MAX_PROCESSES, concurrency))
    return [
        HttpJob(
            process=i,
            urls=tuple(urls),
            token_secret=token_secret,
            connections=concurrency // processes + (i < concurrency % processes),
            plans=tuple(plans[i::processes]),
            duration_s=duration_s,
            seed=seed + i,
        )
        for i in range(processes)
    ]


def run_purchases(
    urls: Sequence[str], token_secret: bytes, plans: Sequence[BuyerPlan], concurrency: int
) -> HttpPurchases:
    """Every plan's quick buy once over HTTP; the merged history in time order."""
    run: LoadRun[HttpPart] = run_load(
        purchase_work, jobs_for(urls, token_secret, concurrency, plans=plans)
    )
    history = sorted(
        (op for part in run.values for op in part.operations),
        key=lambda op: (op.time_ns, op.process),
    )
    return HttpPurchases(
        history=history,
        latencies_ns=sorted(n for part in run.values for n in part.latencies_ns),
        requests=sum(part.requests for part in run.values),
        retries=sum(part.retries for part in run.values),
        wall_s=run.wall_s,
        load_cpu_share=run.cpu_share,
        machine_cpu_share=run.machine_share,
    )


def http_ceiling(
    urls: Sequence[str], token_secret: bytes, concurrency: int, duration_s: float
) -> Ceiling:
    """POST /bench/ceiling over `concurrency` connections for `duration_s` seconds."""
    run = run_load(ceiling_work, jobs_for(urls, token_secret, concurrency, duration_s=duration_s))
    timed = LoadRun(
        [Timed(p.answered, p.latencies_ns) for p in run.values],
        run.wall_s,
        run.cpu_s,
        run.cpu_share,
        run.machine_share,
    )
    return ceiling_of("http", concurrency, len(urls), timed)


# -- in the load processes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    """One prepared purchase: who, what, and the bytes to send."""

    plan: BuyerPlan
    key: str
    headers: bytes
    body: bytes


def purchase_work(job: HttpJob) -> Callable[[], HttpPart]:
    """Prepare every request and connection; the returned call sends them."""
    loop = new_event_loop()
    requests = [_prepare(job.token_secret, plan) for plan in job.plans]
    conns = _connections(job, loop)
    part = HttpPart()
    rng = random.Random(job.seed)

    async def buyer(conn: WireConnection, queue: list[_Request]) -> None:
        while queue:
            await _buy(job.process, conn, queue.pop(), part, rng)

    def go() -> HttpPart:
        queue = requests[::-1]  # pop() from the end takes them in plan order
        tasks = [buyer(conn, queue) for conn in conns]
        loop.run_until_complete(asyncio.gather(*tasks))
        _close(conns, loop)
        return part

    return go


def ceiling_work(job: HttpJob) -> Callable[[], HttpPart]:
    """Connect; the returned call posts to the ceiling route until the time is up."""
    loop = new_event_loop()
    token = issue_token(job.token_secret, f"bench-{job.process}")
    headers = f"{CEILING_TOKEN_HEADER}: {token}\r\n".encode("ascii")
    body = json.dumps(CEILING_BODY).encode()
    conns = _connections(job, loop)
    part = HttpPart()

    async def client(conn: WireConnection, deadline: float) -> None:
        while time.monotonic() < deadline:
            started = time.monotonic_ns()
            answer = await conn.post(CEILING_PATH, headers, body)
            part.requests += 1
            if answer.status != 201:
                raise WireError(f"the HTTP ceiling answered {answer.status}: {answer.body[:200]!r}")
            json.loads(answer.body)
            part.latencies_ns.append(time.monotonic_ns() - started)
            part.answered += 1

    def go() -> HttpPart:
        deadline = time.monotonic() + job.duration_s
        loop.run_until_complete(asyncio.gather(*(client(c, deadline) for c in conns)))
        _close(conns, loop)
        return part

    return go


def _connections(job: HttpJob, loop: asyncio.AbstractEventLoop) -> list[WireConnection]:
    conns = [
        WireConnection.for_url(job.urls[(job.process + c) % len(job.urls)], REQUEST_TIMEOUT_S)
        for c in range(job.connections)
    ]
    loop.run_until_complete(asyncio.gather(*(c.connect() for c in conns)))
    return conns


def _close(conns: list[WireConnection], loop: asyncio.AbstractEventLoop) -> None:
    for conn in conns:
        conn.close()
    loop.run_until_complete(asyncio.sleep(0))  # let the transports finish closing
    loop.close()


def _prepare(token_secret: bytes, plan: BuyerPlan) -> _Request:
    key = str(uuid.uuid4())
    token = issue_token(token_secret, plan.buyer_id)
    headers = f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n".encode("ascii")
    return _Request(plan, key, headers, json.dumps(claim_body(plan)).encode())


def claim_body(plan: BuyerPlan) -> dict[str, Any]:
    """The purchase body of a plan's claim (seats, or a pool with a quantity)."""
    claim = plan.claim
    if isinstance(claim, SeatClaim):
        return {"event_id": claim.event_id, "seat_ids": list(claim.seat_ids)}
    pool = claim.pool_id.removeprefix(f"{claim.event_id}/")
    return {"event_id": claim.event_id, "pool": pool, "quantity": claim.quantity}


async def _buy(
    process: int, conn: WireConnection, request: _Request, part: HttpPart, rng: random.Random
) -> None:
    plan, claim = request.plan, request.plan.claim
    part.requests += 1
    op_id = f"p{process}-{part.requests}"
    invoke = Operation(
        "invoke",
        op_id,
        process,
        plan.buyer_id,
        time.monotonic_ns(),
        BUY_ACTION,
        claim.seat_ids if isinstance(claim, SeatClaim) else (),
        claim.pool_id if isinstance(claim, PoolClaim) else None,
        claim.quantity,
        idempotency_key=request.key,
    )
    part.operations.append(invoke)
    started = invoke.time_ns
    answer: WireAnswer | None = None
    for attempt in range(MAX_ATTEMPTS):
        try:
            answer = await conn.post(PURCHASE_PATH, request.headers, request.body)
        except WireError:
            answer = None
        slug = _slug(answer)
        if answer is not None and slug not in _RETRYABLE:
            break
        if attempt + 1 < MAX_ATTEMPTS:
            part.retries += 1
            await asyncio.sleep(_delay_s(attempt, answer, rng))
    finished = time.monotonic_ns()
    part.latencies_ns.append(finished - started)
    kind, fields = outcome(answer)
    part.operations.append(
        Operation(
            kind,
            op_id,
            process,
            plan.buyer_id,
            finished,
            BUY_ACTION,
            invoke.seat_ids,
            invoke.pool_id,
            invoke.quantity,
            idempotency_key=request.key,
            **fields,
        )
    )


def outcome(answer: WireAnswer | None) -> tuple[OpType, dict[str, Any]]:
    """How the history records a purchase's last answer (None: no answer at all)."""
    if answer is None:
        return "info", {"error": "no answer"}
    status = answer.status
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return "info", {"status": status, "error": f"HTTP {status}"}
    if status in (200, 201, 202):
        return _sold(status, body)
    slug = str(body.get("type", "")).rsplit("/", 1)[-1]
    if slug in _DEFINITE:
        return "fail", {"status": status, "error": _DEFINITE[slug]}
    if slug == "request-in-progress" or status >= 500:
        return "info", {"status": status, "error": slug or f"HTTP {status}"}
    return "fail", {"status": status, "error": slug or f"HTTP {status}"}


def _sold(status: int, body: dict[str, Any]) -> tuple[OpType, dict[str, Any]]:
    """A confirmed order with its ticket codes, or a 202's order whose payment is unknown."""
    order = body.get("order") or {}
    order_id = order.get("order_id") if isinstance(order, dict) else None
    if status == 202:
        return "info", {"status": status, "order_id": order_id}
    tickets = [t for t in body.get("tickets") or () if isinstance(t, dict)]
    codes = tuple(str(t["code"]) for t in tickets if "code" in t)
    return "ok", {"status": status, "order_id": order_id, "ticket_codes": codes}


def _slug(answer: WireAnswer | None) -> str | None:
    if answer is None or answer.status < 400:
        return None
    if answer.status >= 500 and answer.status != 503:
        return "internal"
    try:
        body = json.loads(answer.body)
    except ValueError:
        return None
    return str(body.get("type", "")).rsplit("/", 1)[-1] if isinstance(body, dict) else None


def _delay_s(attempt: int, answer: WireAnswer | None, rng: random.Random) -> float:
    backoff = rng.uniform(0.0, min(MAX_DELAY_S, BASE_DELAY_S * 2.0**attempt))
    if answer is None or answer.retry_after is None:
        return backoff
    try:
        retry_after = float(answer.retry_after)
    except ValueError:
        return backoff
    return max(backoff, min(MAX_RETRY_AFTER_S, retry_after))
