"""The Python client of the lastseat HTTP API (sync and async).

Standalone: it imports nothing else from lastseat, only httpx. Every mutating call sends one
Idempotency-Key, reused on all its retries; errors are `ProblemError` subclasses by problem
`type`; retries follow a `RetryPolicy` within a per-client `RetryBudget`::

    with LastseatClient("http://127.0.0.1:8000", admin_key=key) as admin:
        token = admin.create_buyer("alice", "EUR").body["token"]
        admin.top_up("alice", 5_000)
        alice = admin.with_token(token)
        try:
            bought = alice.purchase("ev-1", seat_ids=["ev-1/A/0001/0001"])
        except UnavailableError:
            ...  # someone else has it; never retried
        if bought.pending:  # 202: the payment outcome is not known yet
            bought = alice.wait_for_order(bought.order_id or "", timeout_s=30)
"""

from lastseat.client._async import AsyncLastseatClient
from lastseat.client._sync import LastseatClient
from lastseat.client.errors import (
    BookkeepingFaultError,
    ConflictError,
    ForbiddenError,
    HoldExpiredError,
    IdempotencyKeyMissingError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    InternalError,
    InvalidStateError,
    LastseatClientError,
    MalformedRequestError,
    NotFoundError,
    OrderWaitTimeoutError,
    OverloadedError,
    PayloadTooLargeError,
    PaymentDeclinedError,
    ProblemError,
    RequestInProgressError,
    ResponseFormatError,
    StoreUnavailableError,
    TransportFailedError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from lastseat.client.models import PENDING_PAYMENT, ClientStatistics, Pool, Result, SeatBlock
from lastseat.client.retry import (
    DEFAULT_RETRY_POLICY,
    NO_RETRY,
    RetryBudget,
    RetryBudgetStatistics,
    RetryPolicy,
)

__all__ = [
    "AsyncLastseatClient",
    "BookkeepingFaultError",
    "ClientStatistics",
    "ConflictError",
    "DEFAULT_RETRY_POLICY",
    "ForbiddenError",
    "HoldExpiredError",
    "IdempotencyKeyMissingError",
    "IdempotencyKeyReusedError",
    "InsufficientFundsError",
    "InternalError",
    "InvalidStateError",
    "LastseatClient",
    "LastseatClientError",
    "MalformedRequestError",
    "NO_RETRY",
    "NotFoundError",
    "OrderWaitTimeoutError",
    "OverloadedError",
    "PENDING_PAYMENT",
    "PayloadTooLargeError",
    "PaymentDeclinedError",
    "Pool",
    "ProblemError",
    "RequestInProgressError",
    "ResponseFormatError",
    "Result",
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryPolicy",
    "SeatBlock",
    "StoreUnavailableError",
    "TransportFailedError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
]
