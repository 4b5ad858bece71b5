"""The client's retry and error branching, sync and async, over scripted answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from client_fakes import ADMIN_KEY, BASE_URL, TOKEN, Harness, Script, ok, order_body, problem

from lastseat.client import (
    ConflictError,
    HoldExpiredError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    InternalError,
    LastseatClient,
    NotFoundError,
    OrderWaitTimeoutError,
    OverloadedError,
    PaymentDeclinedError,
    ProblemError,
    RequestInProgressError,
    ResponseFormatError,
    RetryBudget,
    RetryPolicy,
    StoreUnavailableError,
    TransportFailedError,
    UnavailableError,
    ValidationError,
)

SEAT = "ev-1/A/0001/0001"


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Every test runs on both shells: they share the core, so they must behave the same."""
    return str(request.param)


def test_every_retry_of_one_call_sends_the_same_idempotency_key_and_each_call_a_new_one(
    kind: str,
) -> None:
    script = Script(problem(503, "unavailable-store"), httpx.ConnectError, ok(), ok())
    h = Harness(kind, script)

    first = h.call("purchase", "ev-1", seat_ids=[SEAT])
    second = h.call("purchase", "ev-1", seat_ids=[SEAT])

    keys = script.keys()
    assert first.attempts == 3
    assert keys[:3] == [first.idempotency_key] * 3
    assert second.attempts == 1
    assert keys[3] == second.idempotency_key
    assert first.idempotency_key != second.idempotency_key
    assert first.idempotency_key is not None
    assert len(first.idempotency_key) == 36


def test_a_callers_idempotency_key_is_sent_and_reads_send_none(kind: str) -> None:
    script = Script(ok(), ok(200))
    h = Harness(kind, script)

    result = h.call("pay_hold", "h-1", idempotency_key="my-key-1")
    h.call("order", "o-1")

    assert result.idempotency_key == "my-key-1"
    assert script.keys() == ["my-key-1", None]
    assert script.requests[0].method == "POST"
    assert script.requests[0].url.path == "/holds/h-1/order"


def test_request_in_progress_is_retried_no_sooner_than_retry_after(kind: str) -> None:
    script = Script(problem(409, "request-in-progress", retry_after="2"), ok())
    h = Harness(kind, script)

    result = h.call("purchase", "ev-1", pool="standing", quantity=2)

    assert result.attempts == 2
    assert result.status == 201
    assert len(h.clock.sleeps) == 1
    assert h.clock.sleeps[0] >= 2.0


@pytest.mark.parametrize(
    ("status", "slug", "error"),
    [
        (409, "unavailable", UnavailableError),
        (402, "insufficient-funds", InsufficientFundsError),
        (402, "payment-declined", PaymentDeclinedError),
        (422, "idempotency-key-reused", IdempotencyKeyReusedError),
        (422, "validation", ValidationError),
        (410, "hold-expired", HoldExpiredError),
        (404, "not-found", NotFoundError),
        (500, "internal", InternalError),
    ],
)
def test_final_problems_are_raised_at_once_without_a_retry(
    kind: str, status: int, slug: str, error: type[ProblemError]
) -> None:
    script = Script(problem(status, slug, retry_after="1"), ok())
    h = Harness(kind, script)

    with pytest.raises(error) as raised:
        h.call("purchase", "ev-1", seat_ids=[SEAT])

    assert raised.value.attempts == 1
    assert raised.value.status == status
    assert raised.value.type == f"https://lastseat.dev/problems/{slug}"
    assert raised.value.problem["detail"] == f"{slug}!"
    assert raised.value.idempotency_key == script.keys()[0]
    assert len(script.requests) == 1
    assert h.clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "slug", "error"),
    [
        (503, "overloaded", OverloadedError),
        (503, "unavailable-store", StoreUnavailableError),
        (409, "conflict", ConflictError),
        (409, "request-in-progress", RequestInProgressError),
    ],
)
def test_retryable_problems_are_retried_until_attempts_run_out(
    kind: str, status: int, slug: str, error: type[ProblemError]
) -> None:
    script = Script(problem(status, slug))
    h = Harness(kind, script, retry=RetryPolicy(max_attempts=3))

    with pytest.raises(error) as raised:
        h.call("cancel_order", "o-1")

    assert raised.value.attempts == 3
    assert not raised.value.budget_exhausted
    assert len(script.requests) == 3
    assert len(set(script.keys())) == 1
    assert h.client.statistics().retries == 2


def test_overload_is_retried_and_then_succeeds(kind: str) -> None:
    script = Script(problem(503, "overloaded", retry_after="1"), ok())
    h = Harness(kind, script)

    result = h.call("purchase", "ev-1", seat_ids=[SEAT])

    assert result.attempts == 2
    assert h.clock.sleeps[0] >= 1.0


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
def test_transport_errors_are_retried_for_mutations_and_reads(
    kind: str, failure: type[httpx.TransportError]
) -> None:
    script = Script(failure, failure, ok(), failure, ok(200))
    h = Harness(kind, script)

    bought = h.call("purchase", "ev-1", seat_ids=[SEAT])
    read = h.call("order", "o-1")

    assert bought.attempts == 3
    assert read.attempts == 2
    assert h.client.statistics().transport_errors == 3


def test_when_the_server_never_answers_the_transport_error_names_the_key_to_replay(
    kind: str,
) -> None:
    script = Script(httpx.ConnectTimeout)
    h = Harness(kind, script)

    with pytest.raises(TransportFailedError) as raised:
        h.call("purchase", "ev-1", seat_ids=[SEAT])

    assert raised.value.attempts == 4
    assert raised.value.idempotency_key == script.keys()[0]
    assert isinstance(raised.value.__cause__, httpx.ConnectTimeout)


def test_unknown_problem_types_are_retried_only_when_5xx(kind: str) -> None:
    gateway = httpx.Response(502, text="<html>bad gateway</html>")
    script = Script(gateway, ok(), httpx.Response(418, json={"type": "urn:teapot"}))
    h = Harness(kind, script)

    assert h.call("purchase", "ev-1", seat_ids=[SEAT]).attempts == 2
    with pytest.raises(ProblemError) as raised:
        h.call("purchase", "ev-1", seat_ids=[SEAT])

    assert type(raised.value) is ProblemError
    assert raised.value.status == 418
    assert raised.value.type == "urn:teapot"
    assert raised.value.attempts == 1


def test_a_retry_after_longer_than_the_policy_allows_is_raised_not_waited_for(kind: str) -> None:
    script = Script(problem(503, "overloaded", retry_after="120"), ok())
    h = Harness(kind, script, retry=RetryPolicy(max_retry_after_s=10.0))

    with pytest.raises(OverloadedError) as raised:
        h.call("purchase", "ev-1", seat_ids=[SEAT])

    assert raised.value.retry_after_s == 120.0
    assert h.clock.sleeps == []


def test_an_exhausted_retry_budget_stops_retrying_and_raises_the_last_error(kind: str) -> None:
    script = Script(problem(503, "unavailable-store"))
    budgets: list[RetryBudget] = []

    def one_token(clock: Callable[[], float]) -> RetryBudget:
        budgets.append(RetryBudget(deposit_ratio=0.0, min_retries_per_s=1.0, clock=clock))
        return budgets[0]

    h = Harness(
        kind, script, retry=RetryPolicy(max_attempts=10, base_delay_s=0.01), budget=one_token
    )

    with pytest.raises(StoreUnavailableError) as raised:
        h.call("purchase", "ev-1", seat_ids=[SEAT])

    # The reserve holds one token: one retry, then the budget refuses the second.
    assert raised.value.attempts == 2
    assert raised.value.budget_exhausted
    stats = h.client.statistics()
    assert (stats.calls, stats.requests, stats.retries, stats.budget_exhausted) == (1, 2, 1, 1)
    assert budgets[0].statistics().refused == 1


def test_202_then_wait_for_order_polls_until_the_order_is_final(kind: str) -> None:
    pending = order_body("o-9", "pending_payment")
    script = Script(
        ok(202, pending, location="/orders/o-9"),
        ok(200, pending),
        ok(200, pending),
        ok(200, order_body("o-9", "confirmed")),
    )
    h = Harness(kind, script)

    accepted = h.call("purchase", "ev-1", seat_ids=[SEAT])
    final = h.call("wait_for_order", "o-9", 10.0)

    assert accepted.status == 202
    assert accepted.pending
    assert accepted.location == "/orders/o-9"
    assert accepted.order_id == "o-9"
    assert final.order_status == "confirmed"
    assert [r.url.path for r in script.requests[1:]] == ["/orders/o-9"] * 3
    assert len(h.clock.sleeps) == 2
    assert h.clock.sleeps[0] < h.clock.sleeps[1]


def test_wait_for_order_gives_up_after_its_timeout(kind: str) -> None:
    script = Script(ok(200, order_body("o-9", "pending_payment")))
    h = Harness(kind, script)

    with pytest.raises(OrderWaitTimeoutError) as raised:
        h.call("wait_for_order", "o-9", 3.0)

    assert raised.value.last.pending
    assert sum(h.clock.sleeps) == pytest.approx(3.0)


def test_a_replayed_answer_is_marked_and_counted(kind: str) -> None:
    script = Script(httpx.ReadTimeout, ok(replayed=True))
    h = Harness(kind, script)

    result = h.call("purchase", "ev-1", seat_ids=[SEAT])

    assert result.replayed
    assert result.attempts == 2
    assert h.client.statistics().replays == 1


def test_admin_calls_carry_the_admin_key_and_buyer_calls_the_token(kind: str) -> None:
    script = Script(ok(201, {"buyer_id": "b-1", "token": "t"}))
    h = Harness(kind, script)

    h.call("create_buyer", "b-1", "EUR")
    h.call("tickets")
    h.as_buyer("other-token")
    h.call("availability", "ev-1")

    auth = [r.headers["Authorization"] for r in script.requests]
    assert auth == [f"Bearer {ADMIN_KEY}", f"Bearer {TOKEN}", "Bearer other-token"]
    assert h.client.statistics().calls == 3


def test_a_success_body_that_is_not_a_json_object_is_an_error(kind: str) -> None:
    h = Harness(kind, Script(httpx.Response(200, text="[1, 2]")))

    with pytest.raises(ResponseFormatError):
        h.call("orders")


def test_a_claim_must_name_exactly_one_kind(kind: str) -> None:
    h = Harness(kind, Script(ok()))

    with pytest.raises(ValueError, match="exactly one"):
        h.call("purchase", "ev-1", seat_ids=[SEAT], pool="standing")
    assert h.script.requests == []


def test_threads_sharing_one_client_and_its_copies_count_every_call_and_retry() -> None:
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def flaky(request: httpx.Request) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        with lock:
            seen[key] = seen.get(key, 0) + 1
            first = seen[key] == 1
        return problem(503, "overloaded") if first else ok()

    client = LastseatClient(
        BASE_URL,
        token=TOKEN,
        transport=httpx.MockTransport(flaky),
        budget=RetryBudget(min_retries_per_s=1e6),
        sleep=lambda _: None,
    )
    barrier = threading.Barrier(8)

    def buyer(n: int) -> list[int]:
        mine = client.with_token(f"token-{n}")
        barrier.wait()
        return [mine.purchase("ev-1", seat_ids=[SEAT]).attempts for _ in range(25)]

    with ThreadPoolExecutor(8) as pool:
        attempts = [a for run in pool.map(buyer, range(8)) for a in run]

    stats = client.statistics()
    assert attempts == [2] * 200
    assert (stats.calls, stats.requests, stats.retries) == (200, 400, 200)
    assert len(seen) == 200
