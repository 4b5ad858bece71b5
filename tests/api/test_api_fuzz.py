"""A schemathesis pass over /openapi.json against a live server: no 5xx, answers as documented.

Admin routes are sent with the admin key and buyer routes with a funded buyer's token, so
generated requests get past authentication and reach validation and the use cases. Both valid
(positive) and schema-breaking (negative) requests are generated, a bounded number per route.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
import schemathesis
from api_helpers import ADMIN, Api, Server
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def target(sqlite_server: Server) -> dict[str, Any]:
    """The server's schema, and a funded buyer to act as."""
    api = Api(sqlite_server)
    api.event(rows=3, seats_per_row=10, capacity=1000, price_minor=1)
    _, buyer = api.buyer(10**9)
    api.close()
    return {
        "url": sqlite_server.url,
        "buyer": buyer,
        "schema": schemathesis.openapi.from_url(f"{sqlite_server.url}/openapi.json"),
    }


def _is_admin_route(operation: Any) -> bool:
    return any("admin" in need for need in operation.definition.raw.get("security", []))


def _takes_input(operation: Any) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


def _fuzz(operation: Any, mode: GenerationMode, url: str, headers: dict[str, str]) -> list[int]:
    """Send generated requests for one operation; the statuses they were answered with."""
    statuses: list[int] = []

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION[mode],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def send(case: Any) -> None:
        answer = case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
        statuses.append(answer.status_code)

    send()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(
    target: dict[str, Any], mode: GenerationMode
) -> None:
    operations = [result.ok() for result in target["schema"].get_all_operations()]
    assert len(operations) >= 17
    if mode is GenerationMode.NEGATIVE:
        # Only an operation with parameters or a body can be sent input that breaks its schema.
        operations = [op for op in operations if _takes_input(op)]
    statuses: list[int] = []
    for operation in operations:
        headers = ADMIN if _is_admin_route(operation) else target["buyer"]
        statuses += _fuzz(operation, mode, target["url"], headers)
    # The pass really ran: many requests; valid ones are not all refused, invalid ones are.
    assert len(statuses) >= 5 * len(operations)
    if mode is GenerationMode.POSITIVE:
        assert any(status < 400 for status in statuses)
    else:
        # Some negative cases only break the Authorization header, which is replaced by ours.
        refused = sum(400 <= status < 500 for status in statuses)
        assert refused >= 0.8 * len(statuses), collections.Counter(statuses)
