"""Use cases of selling: quick buy, hold then pay, release, expire, cancel with refund.

Every use case is one unit of work: a write transaction that commits only if the whole case
succeeds. A failed charge therefore leaves nothing claimed and nothing charged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from lastseat.domain.clock import Clock, SystemClock
from lastseat.domain.errors import (
    HoldExpiredError,
    InvalidTransitionError,
    NotFoundError,
    UnavailableError,
)
from lastseat.domain.holds import (
    DEFAULT_HOLD_TTL,
    Claim,
    ClaimRequest,
    Hold,
    HoldStatus,
    SeatClaim,
    SectionClaim,
    expiry_for,
)
from lastseat.domain.inventory import check_id
from lastseat.domain.ledger import (
    Transfer,
    TransferKind,
    revenue_account,
    wallet_account,
)
from lastseat.domain.money import Money
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.tickets import Ticket, new_id, new_ticket_code
from lastseat.service.fenced import answered, fenced
from lastseat.service.idempotency import RequestFence
from lastseat.service.ports import Availability, ClaimStrategy, InventoryTx, Sale, Stage, Store
from lastseat.service.pricing import Prices

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Purchase:
    """A confirmed order and its tickets."""

    order: Order
    tickets: tuple[Ticket, ...]


class BookingService:
    """Sells inventory through one claim strategy."""

    def __init__(
        self,
        store: Store,
        strategy: ClaimStrategy,
        clock: Clock | None = None,
        hold_ttl: timedelta = DEFAULT_HOLD_TTL,
    ) -> None:
        self.store = store
        self.strategy = strategy
        self.clock = clock or SystemClock()
        self.hold_ttl = hold_ttl

    def quick_buy(
        self, buyer_id: str, claim: ClaimRequest, fence: RequestFence | None = None
    ) -> Purchase:
        """Claim, charge the wallet and confirm in one transaction (the "Buy" button).

        Under a request fence the ids are derived from it: a retry that took the request over
        returns what an earlier attempt committed instead of buying again.
        """
        check_id("buyer id", buyer_id)
        now = self.clock.now()
        hold_id, order_id = ids_for(fence)
        if resumed(fence) and (done := self.existing_purchase(buyer_id, order_id)):
            return done

        priced = Prices(claim) if isinstance(claim, Claim) else None

        def finish(tx: InventoryTx, claimed: Claim) -> Purchase:
            hold = Hold(hold_id, buyer_id, claimed, HoldStatus.CONVERTED, now, now)
            price = priced.price(tx) if priced is not None else tx.price_of(claimed)
            return _charge_and_confirm(tx, hold, now_order(hold, price, now, order_id), new=True)

        return self.claim_with(claim, Stage.SOLD, hold_id, now, finish, fence, priced)

    def existing_purchase(self, buyer_id: str, order_id: str) -> Purchase | None:
        """The buyer's order `order_id` with its tickets, if it exists."""
        with self.store.read() as tx:
            order = tx.get_order(order_id)
            if order is None or order.buyer_id != buyer_id:
                return None
            return Purchase(order, tuple(tx.tickets_of(order_id)))

    def place_hold(
        self,
        buyer_id: str,
        claim: ClaimRequest,
        ttl: timedelta | None = None,
        fence: RequestFence | None = None,
    ) -> Hold:
        """Claim inventory for a while; it lapses at `expires_at` unless paid."""
        check_id("buyer id", buyer_id)
        now = self.clock.now()
        expires_at = expiry_for(now, ttl or self.hold_ttl)
        hold_id = ids_for(fence)[0]
        if resumed(fence):
            with self.store.read() as tx:
                earlier = tx.get_hold(hold_id)
            if earlier is not None and earlier.buyer_id == buyer_id:
                return earlier  # an earlier attempt of this request placed it

        def finish(tx: InventoryTx, claimed: Claim) -> Hold:
            hold = Hold(hold_id, buyer_id, claimed, HoldStatus.ACTIVE, now, expires_at)
            return replace(hold, fence=tx.insert_hold(hold))

        return self.claim_with(claim, Stage.HELD, hold_id, now, finish, fence)

    def claim_with(
        self,
        claim: ClaimRequest,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx, Claim], T],
        fence: RequestFence | None = None,
        priced: Prices | None = None,
    ) -> T:
        """Run the strategy for any claim; `finish` learns which seats a section claim got.
        Under a request fence every transaction of the claim checks it first; with `priced`
        (a quick buy of a seat or pool claim) every one then reads the price."""
        store = fenced(self.store, fence)
        finish = answered(finish, fence, now)  # the request's answer commits with its result
        if priced is not None:
            store = priced.over(store)
        try:
            if isinstance(claim, SectionClaim):
                return self.strategy.claim_section(store, claim, stage, hold_id, now, finish)
            return self.strategy.claim(
                store, claim, stage, hold_id, now, lambda tx: finish(tx, claim)
            )
        except NotFoundError:
            # Say what is missing: the event itself, rather than each seat or pool of it.
            with self.store.read() as tx:
                if tx.event_currency(claim.event_id) is None:
                    raise NotFoundError(f"no event {claim.event_id}") from None
            raise

    def pay_hold(self, buyer_id: str, hold_id: str, fence: RequestFence | None = None) -> Purchase:
        """Pay for a hold; a lapsed hold is re-claimed if its inventory is still free."""
        now = self.clock.now()
        order_id = ids_for(fence)[1]
        if resumed(fence) and (done := self.existing_purchase(buyer_id, order_id)):
            return done
        with self.store.write() as tx:
            if fence is not None:
                tx.check_request_fence(fence)
            hold = self._own_hold(tx, buyer_id, hold_id)
            if hold.status is HoldStatus.ACTIVE and not hold.is_lapsed(now):
                order = now_order(hold, tx.price_of(hold.claim), now, order_id)
                if not tx.move_hold(hold_id, HoldStatus.ACTIVE, HoldStatus.CONVERTED):
                    raise HoldExpiredError(f"hold {hold_id} expired while being paid")
                tx.sell_held(hold)
                return _charge_and_confirm(tx, hold, order)
            if hold.status is HoldStatus.ACTIVE:
                tx.expire_hold(hold_id)  # lapsed: expire it (committed), then try to re-claim
            elif hold.status is not HoldStatus.EXPIRED:
                raise InvalidTransitionError(f"hold {hold_id} is {hold.status}; it cannot be paid")
        return self._reclaim(hold, now, order_id, fence)

    def _reclaim(
        self, hold: Hold, now: datetime, order_id: str, fence: RequestFence | None
    ) -> Purchase:
        """Pay an expired hold by claiming its inventory again under the same hold id."""

        def finish(tx: InventoryTx) -> Purchase:
            # The status change elects one payer: paying the same expired hold twice (even at
            # the same moment) charges once.
            if not tx.move_hold(hold.hold_id, HoldStatus.EXPIRED, HoldStatus.CONVERTED):
                raise InvalidTransitionError(f"hold {hold.hold_id} has been paid already")
            order = now_order(hold, tx.price_of(hold.claim), now, order_id)
            return _charge_and_confirm(tx, hold, order)

        try:
            return self.strategy.claim(
                fenced(self.store, fence), hold.claim, Stage.SOLD, hold.hold_id, now, finish
            )
        except UnavailableError as exc:
            raise HoldExpiredError(
                f"hold {hold.hold_id} expired and its inventory was sold meanwhile; nothing charged"
            ) from exc

    def release_hold(self, buyer_id: str, hold_id: str, fence: RequestFence | None = None) -> Hold:
        """Give a hold's inventory back; a hold already gone answers as it stands.

        Released (by an earlier attempt of this request, or an earlier release) or lapsed
        (whether or not a sweeper or another buyer's claim marked it expired yet): the caller
        wanted it gone and it is, so every such release gets the same success. Refused: a hold
        that was paid, or has an order being paid (its payment may still convert it).
        """
        now = self.clock.now()
        with fenced(self.store, fence).write() as tx:
            hold = self._own_hold(tx, buyer_id, hold_id)
            if hold.status is HoldStatus.RELEASED:
                return hold
            _refuse_if_being_paid(tx, hold)
            if hold.status is HoldStatus.ACTIVE and not hold.is_lapsed(now):
                if tx.move_hold(hold_id, HoldStatus.ACTIVE, HoldStatus.RELEASED):
                    tx.release_inventory(hold, Stage.HELD)
                    return hold.to(HoldStatus.RELEASED)
                # Moved between our read and our write (PostgreSQL's READ COMMITTED): it can
                # only have moved on, to released, expired or converted; answer that.
                hold = self._own_hold(tx, buyer_id, hold_id)
            return _gone(tx, hold, now)

    def cancel_order(
        self, buyer_id: str, order_id: str, fence: RequestFence | None = None
    ) -> Order:
        """Refund a confirmed order: money back and inventory released, atomically. An order
        refunded already (by an earlier attempt of this request, or an earlier cancel) is
        answered as it stands, refunded, and nothing is given back twice."""
        with fenced(self.store, fence).write() as tx:
            order, taken = take_back(tx, buyer_id, order_id)
            if not taken:
                return order
            tx.post_transfer(
                Transfer(
                    new_id("trf"),
                    TransferKind.REFUND,
                    revenue_account(order.amount.currency, order_id),
                    wallet_account(buyer_id),
                    order.amount,
                    order_id,
                )
            )
            return order

    def expire_lapsed_holds(self, limit: int = 500) -> int:
        """The sweeper: expire up to `limit` lapsed holds; safe on many processes at once."""
        with self.store.write() as tx:
            lapsed = tx.lapsed_hold_ids(self.clock.now(), limit)
            return sum(1 for hold_id in lapsed if tx.expire_hold(hold_id))

    def purchase(self, buyer_id: str, order_id: str) -> Purchase:
        """One of the buyer's orders with its tickets."""
        with self.store.read() as tx:
            order = tx.get_order(order_id)
            if order is None or order.buyer_id != buyer_id:
                raise NotFoundError(f"no order {order_id}")
            return Purchase(order, tuple(tx.tickets_of(order_id)))

    def purchases_of(self, buyer_id: str, limit: int = 100) -> list[Purchase]:
        """A buyer's newest orders with their tickets."""
        with self.store.read() as tx:
            return [
                Purchase(o, tuple(tx.tickets_of(o.order_id))) for o in tx.orders_of(buyer_id, limit)
            ]

    def hold(self, buyer_id: str, hold_id: str) -> Hold:
        """One of the buyer's holds."""
        with self.store.read() as tx:
            hold = tx.get_hold(hold_id)
        if hold is None or hold.buyer_id != buyer_id:
            raise NotFoundError(f"no hold {hold_id}")
        return hold

    def availability(self, event_id: str) -> Availability:
        """What an event has left (lapsed holds counted as free)."""
        with self.store.read() as tx:
            found = tx.availability(event_id, self.clock.now())
        if found is None:
            raise NotFoundError(f"no event {event_id}")
        return found

    @staticmethod
    def _own_hold(tx: InventoryTx, buyer_id: str, hold_id: str) -> Hold:
        hold = tx.get_hold(hold_id)
        if hold is None or hold.buyer_id != buyer_id:
            raise NotFoundError(f"no hold {hold_id}")
        return hold


def take_back(tx: InventoryTx, buyer_id: str, order_id: str) -> tuple[Order, bool]:
    """Cancel a confirmed order in `tx`: REFUNDED, tickets void, inventory free; the money is
    the caller's to give back. Returns the order as refunded, and whether this call took it
    back (False: a cancel before this one did, and there is nothing left to do)."""
    order = tx.get_order(order_id)
    if order is None or order.buyer_id != buyer_id:
        raise NotFoundError(f"no order {order_id}")
    if order.status is OrderStatus.REFUNDED:
        return order, False
    refunded = order.to(OrderStatus.REFUNDED)
    if not tx.move_order(order_id, OrderStatus.CONFIRMED, OrderStatus.REFUNDED):
        # A concurrent cancel (PostgreSQL's READ COMMITTED re-checks after its lock wait).
        now = tx.get_order(order_id)
        if now is not None and now.status is OrderStatus.REFUNDED:
            return now, False
        raise InvalidTransitionError(f"order {order_id} changed while being cancelled")
    tx.void_tickets(order_id)
    if (hold := tx.get_hold(order.hold_id)) is not None:
        tx.release_inventory(hold, Stage.SOLD)
    return refunded, True


def _refuse_if_being_paid(tx: InventoryTx, hold: Hold) -> None:
    """A paid hold, or one whose order's payment is still open, is not the buyer's to release."""
    if hold.status is HoldStatus.CONVERTED:
        raise InvalidTransitionError(f"hold {hold.hold_id} was paid; cancel its order instead")
    order_id = tx.order_of_hold(hold.hold_id)
    order = None if order_id is None else tx.get_order(order_id)
    if order is not None and order.status is OrderStatus.PENDING_PAYMENT:
        raise InvalidTransitionError(f"hold {hold.hold_id} has an order being paid")


def _gone(tx: InventoryTx, hold: Hold, now: datetime) -> Hold:
    """A hold that is no longer the buyer's to release, as it now stands: released or expired
    (a lapsed one is expired here, its inventory given back once); refused if it was paid."""
    if hold.is_lapsed(now):
        tx.expire_hold(hold.hold_id)  # False if a sweeper beat us to it: expired either way
        return hold.to(HoldStatus.EXPIRED)
    if hold.status in (HoldStatus.RELEASED, HoldStatus.EXPIRED):
        return hold
    raise InvalidTransitionError(f"hold {hold.hold_id} is {hold.status}; it cannot be released")


def resumed(fence: RequestFence | None) -> bool:
    """Whether an earlier attempt of this request may have committed something: it was taken
    over. A first attempt has nothing to find, so it skips the lookup."""
    return fence is not None and fence.attempt > 1


def ids_for(fence: RequestFence | None) -> tuple[str, str]:
    """The hold and order ids a request creates: derived from its fence, else fresh."""
    if fence is None:
        return new_id("hld"), new_id("ord")
    return fence.derived_id("hld"), fence.derived_id("ord")


def now_order(hold: Hold, price: Money, now: datetime, order_id: str | None = None) -> Order:
    """A new pending order for everything a hold claims."""
    return Order(
        order_id or new_id("ord"),
        hold.buyer_id,
        hold.claim.event_id,
        hold.hold_id,
        OrderStatus.PENDING_PAYMENT,
        price,
        hold.claim.quantity,
        now,
    )


def _charge_and_confirm(
    tx: InventoryTx, hold: Hold, order: Order, *, new: bool = False
) -> Purchase:
    """Debit the wallet, confirm the order, issue the tickets: one batch for the store (and,
    with `new`, the quick buy's hold with them). Runs right after the claim, so it must not
    cost round trips: a wallet that cannot pay raises then, or when the transaction ends."""
    confirmed = order.to(OrderStatus.CONFIRMED)
    tickets = tuple(tickets_for(confirmed, hold.claim))
    transfer = Transfer(
        new_id("trf"),
        TransferKind.PURCHASE,
        wallet_account(hold.buyer_id),
        revenue_account(order.amount.currency, order.order_id),
        order.amount,
        order.order_id,
    )
    tx.record_sale(Sale(confirmed, transfer, tickets, hold if new else None))
    return Purchase(confirmed, tickets)


def tickets_for(order: Order, claim: Claim) -> list[Ticket]:
    if isinstance(claim, SeatClaim):
        return [
            Ticket(new_id("tkt"), order.order_id, order.event_id, seat_id, None, new_ticket_code())
            for seat_id in claim.seat_ids
        ]
    return [
        Ticket(
            new_id("tkt"), order.order_id, order.event_id, None, claim.pool_id, new_ticket_code()
        )
        for _ in range(claim.quantity)
    ]
