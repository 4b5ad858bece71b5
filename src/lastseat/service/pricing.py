"""The price of a claim, read at the start of its write transaction, before anything is locked.

A sale needs its price for the order and the debit. Read after the claim, it is one more
round trip while the claim holds the hot row's lock (the pool, or the seats)::

    A: BEGIN  UPDATE pools ... (locks)  SELECT price  [sale rows]  COMMIT
    B:               waits ...........................................  runs

Read first, it costs the same round trip with nothing locked yet::

    A: BEGIN  SELECT price  UPDATE pools ... (locks)  [sale rows]  COMMIT
    B:                            waits ............................  runs

Prices never change once an event is created, so the price read at the start of the
transaction is the price of what the claim takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress

from lastseat.domain.errors import NotFoundError
from lastseat.domain.holds import Claim
from lastseat.domain.money import Money
from lastseat.service.ports import InventoryTx, Store
from lastseat.service.store_layer import StoreLayer


class Prices:
    """The price of one claim per write transaction, read before the claim locks anything."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self._read: dict[int, Money] = {}

    def over(self, store: Store) -> Store:
        """`store` whose every write transaction first reads the claim's price."""
        return _PricedStore(store, self)

    def price(self, tx: InventoryTx) -> Money:
        """The price read at the start of `tx`, or read now if it could not be then."""
        found = self._read.get(id(tx))
        return found if found is not None else tx.price_of(self.claim)

    @contextmanager
    def reading(self, tx: InventoryTx) -> Iterator[None]:
        with suppress(NotFoundError):  # missing inventory: the claim's refusal says which
            self._read[id(tx)] = tx.price_of(self.claim)
        try:
            yield
        finally:
            self._read.pop(id(tx), None)


class _PricedStore(StoreLayer):
    def __init__(self, inner: Store, prices: Prices) -> None:
        super().__init__(inner)
        self.prices = prices

    def within(self, tx: InventoryTx) -> AbstractContextManager[None]:
        return self.prices.reading(tx)
