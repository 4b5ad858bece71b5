"""A store whose every write transaction first checks a request's fence; a use case's last
step that stores the request's answer in the same transaction.

Checking the fence first, before a strategy claims anything, keeps the check out of the time
a contended row is locked: the claim's row lock is held from the claim to COMMIT, so one more
statement after it would stretch every buyer's wait on a hot seat or pool.

The stored answer cannot come first (it names what the claim got), so it is the one statement
a request adds after the claim; it replaces a second transaction with its own durable commit
and closes the window between the two (lastseat.service.idempotency, interleaving 3)::

    before:  [fence  claim  sale  COMMIT]  [answer  COMMIT]   <- a crash here: a sale, no answer
    now:     [fence  claim  sale  answer  COMMIT]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from lastseat.domain.errors import FencedOutError
from lastseat.service.idempotency import RequestFence
from lastseat.service.ports import InventoryTx, Store
from lastseat.service.store_layer import StoreLayer

A = TypeVar("A")
T = TypeVar("T")


def fenced(store: Store, fence: RequestFence | None) -> Store:
    """`store`, or, under a request fence, `store` with the fence checked by every write."""
    return store if fence is None else _FencedStore(store, fence)


def answered(
    finish: Callable[[InventoryTx, A], T], fence: RequestFence | None, now: datetime
) -> Callable[[InventoryTx, A], T]:
    """`finish`, then, if the request knows its final answer to the result, that answer stored
    as the request's in the same transaction (it commits with the result or not at all)."""
    slot = None if fence is None else fence.answer
    if fence is None or slot is None:
        return finish

    def finish_and_answer(tx: InventoryTx, claimed: A) -> T:
        result = finish(tx, claimed)
        response = slot.answer(result)
        if response is not None and not tx.finish_request(fence, response, now):
            raise FencedOutError(f"request {fence.record_id} attempt {fence.attempt} is over")
        return result

    return finish_and_answer


class _FencedStore(StoreLayer):
    def __init__(self, inner: Store, fence: RequestFence) -> None:
        super().__init__(inner)
        self.fence = fence

    @contextmanager
    def within(self, tx: InventoryTx) -> Iterator[None]:
        tx.check_request_fence(self.fence)
        yield
