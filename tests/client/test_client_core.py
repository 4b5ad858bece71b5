"""The client's pure parts: backoff, retry budget, Retry-After, the problem table, isolation."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from random import Random

import pytest

from lastseat.client import ProblemError, RetryBudget, RetryPolicy, UnavailableError
from lastseat.client._core import parse_retry_after
from lastseat.client.errors import PROBLEM_ERRORS, problem_error_class

SLUGS = {
    "malformed-request": False,
    "idempotency-key-missing": False,
    "unauthorized": False,
    "insufficient-funds": False,
    "payment-declined": False,
    "forbidden": False,
    "not-found": False,
    "conflict": True,
    "unavailable": False,
    "invalid-state": False,
    "request-in-progress": True,
    "hold-expired": False,
    "payload-too-large": False,
    "validation": False,
    "idempotency-key-reused": False,
    "internal": False,
    "overloaded": True,
    "unavailable-store": True,
    "bookkeeping-fault": False,  # the store refused a write the service should never make
}


def test_full_jitter_delays_stay_within_the_capped_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    rng = Random(3)
    for retry_number, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (40, 1.0)]:
        delays = [policy.backoff_s(retry_number, rng) for _ in range(500)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(delays) < 0.1 * ceiling
        assert max(delays) > 0.9 * ceiling


def test_a_retry_never_comes_sooner_than_the_servers_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    rng = Random(5)
    assert all(policy.delay_s(n, 1.5, rng) >= 1.5 for n in range(10))
    assert all(policy.delay_s(n, None, rng) <= 1.0 for n in range(10))


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay_s=-1)


def test_the_budget_allows_a_fifth_of_calls_as_retries_plus_a_reserve_refilled_per_second() -> None:
    now = [0.0]
    budget = RetryBudget(deposit_ratio=0.2, min_retries_per_s=2.0, clock=lambda: now[0])

    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()  # the reserve of two is spent, nothing deposited

    for _ in range(10):
        budget.deposit()
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()  # ten calls earned two retries

    now[0] += 0.5
    assert budget.try_withdraw()  # half a second refilled one reserve token
    assert not budget.try_withdraw()
    assert budget.statistics().refused == 3


def test_the_budget_balance_is_capped() -> None:
    budget = RetryBudget(deposit_ratio=1.0, min_retries_per_s=0.0, max_balance=3.0)
    for _ in range(100):
        budget.deposit()
    assert [budget.try_withdraw() for _ in range(4)] == [True, True, True, False]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Fri, 27 Nov 2026 12:00:05 GMT", now) == 5.0
    assert parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_every_problem_type_has_its_error_class_and_retry_rule() -> None:
    assert {cls.slug for cls in PROBLEM_ERRORS.values()} == set(SLUGS)
    for slug, retryable in SLUGS.items():
        cls = problem_error_class(f"https://lastseat.dev/problems/{slug}")
        error = cls({"type": f"https://lastseat.dev/problems/{slug}"}, status=409)
        assert cls.slug == slug
        assert error.may_retry is retryable, slug


def test_errors_branch_on_type_never_on_detail() -> None:
    body = {
        "type": "https://lastseat.dev/problems/unavailable",
        "title": "Already taken",
        "status": 409,
        "detail": "the conflict was lost; retry",
    }
    error = problem_error_class(body["type"])(body, status=409)  # type: ignore[arg-type]
    assert isinstance(error, UnavailableError)
    assert not error.may_retry
    assert str(error) == "409 Already taken: the conflict was lost; retry"
    unknown = ProblemError({"title": "Bad gateway"}, status=502)
    assert unknown.type == "about:blank"
    assert unknown.may_retry


def test_the_client_package_imports_nothing_else_from_lastseat() -> None:
    code = (
        "import sys, lastseat.client; "
        "print(sorted(m for m in sys.modules if m.startswith('lastseat.')"
        " and not m.startswith('lastseat.client')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
