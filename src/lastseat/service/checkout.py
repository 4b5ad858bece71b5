"""Paying through a provider outside the database, without a transaction open across the call.

    request   tx1: claim as held + order PENDING_PAYMENT + payment `pending` (leased) -> COMMIT
              provider.charge(payment key)                 (no transaction, no lock held)
              tx2: captured -> confirm + tickets  |  declined -> order FAILED, hold released
    unknown   (timeout, provider down, answer lost, server crashed): the payment row stays
              `pending`; when its lease ends a reconciler on any server charges again with the
              same key, which the provider answers with the first result, and settles it.

The interleavings this prevents::

    A: charge -> captured ... answer lost; A retries: charge -> captured again   # same key: one
    A: captured; A's server dies before tx2         -> money, no ticket          # reconciler
    A: captured after A's hold lapsed and B bought the seat -> money, no ticket  # refund
    A, R (a reconciler): both settle A's capture    -> two confirmations        # conditional
                                                       status changes elect one

Payments through the wallet ledger are transactional: `Checkout` hands them to
BookingService, which charges inside the claiming transaction.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lastseat.domain.errors import (
    ConflictError,
    HoldExpiredError,
    InvalidTransitionError,
    NotFoundError,
    PaymentDeclinedError,
    PaymentProviderError,
    PaymentUnknownError,
    UnavailableError,
)
from lastseat.domain.holds import Claim, ClaimRequest, Hold, HoldStatus, expiry_for
from lastseat.domain.inventory import check_id
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.payments import Payment, PaymentStatus
from lastseat.service.booking import (
    BookingService,
    Purchase,
    ids_for,
    now_order,
    resumed,
    take_back,
    tickets_for,
)
from lastseat.service.fenced import fenced
from lastseat.service.idempotency import RequestFence
from lastseat.service.payments import (
    Charge,
    ChargeStatus,
    PaymentProvider,
    payment_key_for,
    refund_key_for,
)
from lastseat.service.ports import InventoryTx, Stage

logger = logging.getLogger("lastseat.checkout")

DEFAULT_PAYMENT_LEASE = timedelta(seconds=30)
DEFAULT_RETRY_DELAY = timedelta(seconds=2)


class _SettledElsewhereError(Exception):
    """Another driver settled this payment first; roll back and read what it did."""


class CheckoutStatistics:
    """What this process's checkout saw of its provider, counted since it started."""

    FIELDS = ("charges", "captured", "declined", "unknown", "refunds", "refunded", "reconciled")

    def __init__(self) -> None:
        self._counts = dict.fromkeys(self.FIELDS, 0)
        self._lock = threading.Lock()

    def add(self, field: str) -> None:
        """Count one more `field`."""
        with self._lock:
            self._counts[field] += 1

    def as_dict(self) -> dict[str, int]:
        """A copy of the counters."""
        with self._lock:
            return dict(self._counts)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What one reconciler pass did."""

    examined: int = 0
    confirmed: int = 0
    failed: int = 0
    refunded: int = 0
    still_unknown: int = 0


class Checkout:
    """Quick buy and hold payment through any PaymentProvider; the reconciler."""

    def __init__(
        self,
        booking: BookingService,
        provider: PaymentProvider,
        payment_lease: timedelta = DEFAULT_PAYMENT_LEASE,
        retry_delay: timedelta = DEFAULT_RETRY_DELAY,
    ) -> None:
        self.booking = booking
        self.provider = provider
        self.store = booking.store
        self.clock = booking.clock
        self.payment_lease = payment_lease
        self.retry_delay = retry_delay
        self._stats = CheckoutStatistics()

    def statistics(self) -> dict[str, int]:
        """Charges, captures, declines, unknown outcomes, refunds and reconciled payments."""
        return self._stats.as_dict()

    # -- entry points -----------------------------------------------------------------------

    def quick_buy(
        self, buyer_id: str, claim: ClaimRequest, fence: RequestFence | None = None
    ) -> Purchase:
        """Claim, pay and confirm; a pending order comes back when the payment is unknown."""
        if self.provider.transactional:
            return self.booking.quick_buy(buyer_id, claim, fence)
        check_id("buyer id", buyer_id)
        hold_id, order_id = ids_for(fence)
        if resumed(fence) and (done := self.booking.existing_purchase(buyer_id, order_id)):
            return self._resume(done)
        now = self.clock.now()
        expires_at = expiry_for(now, self.booking.hold_ttl)

        def finish(tx: InventoryTx, claimed: Claim) -> Order:
            hold = Hold(hold_id, buyer_id, claimed, HoldStatus.ACTIVE, now, expires_at)
            hold = replace(hold, fence=tx.insert_hold(hold))
            return self._open_order(tx, hold, order_id, now)

        order = self.booking.claim_with(claim, Stage.HELD, hold_id, now, finish, fence)
        return self._drive(order.order_id)

    def pay_hold(self, buyer_id: str, hold_id: str, fence: RequestFence | None = None) -> Purchase:
        """Pay for a hold; a lapsed hold is re-claimed (under a new hold) if still free."""
        if self.provider.transactional:
            return self.booking.pay_hold(buyer_id, hold_id, fence)
        order_id = ids_for(fence)[1]
        if resumed(fence) and (done := self.booking.existing_purchase(buyer_id, order_id)):
            return self._resume(done)
        now = self.clock.now()
        with self.store.write() as tx:
            if fence is not None:
                tx.check_request_fence(fence)
            hold = tx.get_hold(hold_id)
            if hold is None or hold.buyer_id != buyer_id:
                raise NotFoundError(f"no hold {hold_id}")
            if (taken := tx.order_of_hold(hold_id)) is not None:
                raise InvalidTransitionError(f"hold {hold_id} already has order {taken}")
            if hold.status is HoldStatus.ACTIVE and not hold.is_lapsed(now):
                order = self._open_order(tx, hold, order_id, now)
            elif hold.status is HoldStatus.ACTIVE or hold.status is HoldStatus.EXPIRED:
                tx.expire_hold(hold_id)  # lapsed: give it back (committed), then re-claim
                order = None
            else:
                raise InvalidTransitionError(f"hold {hold_id} is {hold.status}; it cannot be paid")
        if order is None:
            return self._rebuy(hold, fence)
        return self._drive(order.order_id)

    def cancel_order(
        self, buyer_id: str, order_id: str, fence: RequestFence | None = None
    ) -> Order:
        """Refund a confirmed order: tickets void and inventory free at once, money back from
        the provider (now, or by the reconciler if the provider does not answer).

        An order refunded already (an earlier attempt of this request, whose server may have
        died before the provider was asked, or an earlier cancel) answers refunded; its refund
        is driven on here if nobody is driving it.
        """
        with self.store.read() as read:
            payment = read.get_payment(order_id)
        if payment is None:
            return self.booking.cancel_order(buyer_id, order_id, fence)
        now = self.clock.now()
        lease_until = now + self.payment_lease
        with fenced(self.store, fence).write() as tx:
            refunded, taken = take_back(tx, buyer_id, order_id)
            if not taken:
                driving = tx.lease_payment(order_id, now, lease_until)
            elif tx.move_payment(
                order_id, PaymentStatus.CAPTURED, PaymentStatus.REFUND_PENDING, now
            ):
                tx.set_payment_lease(order_id, lease_until)
                driving = True
            else:
                raise ConflictError(f"the payment of order {order_id} changed meanwhile")
        if driving:
            self._refund(order_id)
        return refunded

    def reconcile(self, limit: int = 100) -> ReconcileReport:
        """Drive every unsettled payment whose lease has ended to a final state; safe to run
        on many servers at once (a conditional lease elects one driver per payment)."""
        now = self.clock.now()
        with self.store.write() as tx:
            due = tx.unsettled_payments(now, limit)
        report = ReconcileReport()
        for order_id in due:
            with self.store.write() as tx:
                leased = tx.lease_payment(order_id, now, now + self.payment_lease)
            if not leased:
                continue
            self._stats.add("reconciled")
            report = _count(report, self._drive_quietly(order_id))
        return report

    # -- driving one payment --------------------------------------------------------------

    def _open_order(self, tx: InventoryTx, hold: Hold, order_id: str, now: datetime) -> Order:
        order = now_order(hold, tx.price_of(hold.claim), now, order_id)
        tx.insert_order(order)
        payment = Payment(
            order_id,
            self.provider.name,
            payment_key_for(order_id),
            PaymentStatus.PENDING,
            order.amount,
            None,
            1,
            now + self.payment_lease,  # this request drives it; reconcilers wait
        )
        tx.insert_payment(payment, now)
        return order

    def _resume(self, purchase: Purchase) -> Purchase:
        """A retried request finds its order: report a final one, drive a pending one."""
        order = purchase.order
        if order.status is OrderStatus.PENDING_PAYMENT:
            now = self.clock.now()
            with self.store.write() as tx:
                leased = tx.lease_payment(order.order_id, now, now + self.payment_lease)
            return self._drive(order.order_id) if leased else purchase
        return self._answer(purchase)

    def _drive(self, order_id: str) -> Purchase:
        """Charge (or refund) until we know the outcome; the order as it then stands."""
        with self.store.read() as tx:
            payment = tx.get_payment(order_id)
        if payment is None:
            raise NotFoundError(f"order {order_id} has no payment")
        if payment.status is PaymentStatus.PENDING:
            self._stats.add("charges")
            try:
                charge = self.provider.charge(
                    payment.payment_key, self._buyer_of(order_id), payment.amount
                )
            except (PaymentUnknownError, PaymentProviderError) as exc:
                logger.warning("payment of order %s unknown: %s", order_id, exc)
                self._stats.add("unknown")
                self._hand_over(order_id)
                return self._purchase(order_id)
            self._stats.add("declined" if charge.status is ChargeStatus.DECLINED else "captured")
            self._settle(order_id, charge)
        elif payment.status is PaymentStatus.REFUND_PENDING:
            self._refund(order_id)
        return self._answer(self._purchase(order_id))

    def _drive_quietly(self, order_id: str) -> Order:
        """As _drive, for the reconciler: outcomes are recorded, not raised."""
        with contextlib.suppress(PaymentDeclinedError, HoldExpiredError):
            self._drive(order_id)
        return self._purchase(order_id).order

    def _settle(self, order_id: str, charge: Charge) -> None:
        if charge.status is ChargeStatus.DECLINED:
            self._decline(order_id)
            return
        try:
            if not self._confirm_held(order_id, charge):
                self._confirm_reclaimed(order_id, charge)
        except _SettledElsewhereError:
            return
        except UnavailableError:
            self._start_refund(order_id, charge)
            self._refund(order_id)

    def _confirm_held(self, order_id: str, charge: Charge) -> bool:
        """Confirm if the order's hold still holds its inventory; False if it lapsed."""
        now = self.clock.now()
        with self.store.write() as tx:
            order, payment, hold = _records(tx, order_id)
            if payment.status is not PaymentStatus.PENDING:
                return True  # another driver settled it
            if hold.status is HoldStatus.ACTIVE and not hold.is_lapsed(now):
                if not tx.move_hold(hold.hold_id, HoldStatus.ACTIVE, HoldStatus.CONVERTED):
                    raise ConflictError(f"hold {hold.hold_id} changed while being confirmed")
                tx.sell_held(hold)
                _confirm(tx, order, hold, charge, now)
                return True
            if hold.status is HoldStatus.ACTIVE:
                tx.expire_hold(hold.hold_id)
            return False

    def _confirm_reclaimed(self, order_id: str, charge: Charge) -> None:
        """The money came after the hold lapsed: claim the inventory again, or raise
        UnavailableError when it is gone."""
        now = self.clock.now()
        hold_id = self._hold_of(order_id)
        with self.store.read() as read:
            hold = read.get_hold(hold_id)
        assert hold is not None

        def finish(tx: InventoryTx) -> None:
            order, payment, _ = _records(tx, order_id)
            if payment.status is not PaymentStatus.PENDING or not tx.move_hold(
                hold.hold_id, HoldStatus.EXPIRED, HoldStatus.CONVERTED
            ):
                raise _SettledElsewhereError(order_id)
            _confirm(tx, order, hold, charge, now)

        self.booking.strategy.claim(self.store, hold.claim, Stage.SOLD, hold.hold_id, now, finish)

    def _decline(self, order_id: str) -> None:
        now = self.clock.now()
        with self.store.write() as tx:
            order, _, hold = _records(tx, order_id)
            if not tx.move_payment(order_id, PaymentStatus.PENDING, PaymentStatus.DECLINED, now):
                return
            if not tx.move_order(order_id, OrderStatus.PENDING_PAYMENT, OrderStatus.FAILED):
                raise ConflictError(f"order {order.order_id} changed while failing")
            if tx.move_hold(hold.hold_id, HoldStatus.ACTIVE, HoldStatus.RELEASED):
                tx.release_inventory(hold, Stage.HELD)

    def _start_refund(self, order_id: str, charge: Charge) -> None:
        """Captured, but nothing to sell any more: the order expires and the money goes back."""
        now = self.clock.now()
        with self.store.write() as tx:
            if not tx.move_payment(
                order_id,
                PaymentStatus.PENDING,
                PaymentStatus.REFUND_PENDING,
                now,
                charge.payment_id,
            ):
                return
            if not tx.move_order(order_id, OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED):
                raise ConflictError(f"order {order_id} changed while expiring")

    def _refund(self, order_id: str) -> None:
        with self.store.read() as read:
            payment = read.get_payment(order_id)
        if payment is None or payment.status is not PaymentStatus.REFUND_PENDING:
            return
        assert payment.payment_id is not None  # the schema guarantees it past `pending`
        self._stats.add("refunds")
        try:
            self.provider.refund(refund_key_for(order_id), payment.payment_id, payment.amount)
            self._stats.add("refunded")
        except (PaymentUnknownError, PaymentProviderError) as exc:
            logger.warning("refund of order %s unknown: %s", order_id, exc)
            self._hand_over(order_id)
            return
        now = self.clock.now()
        with self.store.write() as tx:
            tx.move_payment(order_id, PaymentStatus.REFUND_PENDING, PaymentStatus.REFUNDED, now)

    def _hand_over(self, order_id: str) -> None:
        """Outcome unknown: let a reconciler try again soon (same key, so at most one capture)."""
        with self.store.write() as tx:
            tx.set_payment_lease(order_id, self.clock.now() + self.retry_delay)

    def _rebuy(self, hold: Hold, fence: RequestFence | None) -> Purchase:
        """Pay a lapsed hold: its inventory claimed again under a new hold, if still free."""
        with self.store.write() as tx:
            # Electing one payer of the lapsed hold: paying it twice at once buys once.
            if not tx.move_hold(hold.hold_id, HoldStatus.EXPIRED, HoldStatus.CONVERTED):
                raise InvalidTransitionError(f"hold {hold.hold_id} has been paid already")
        try:
            return self.quick_buy(hold.buyer_id, hold.claim, fence)
        except UnavailableError as exc:
            raise HoldExpiredError(
                f"hold {hold.hold_id} expired and its inventory was sold meanwhile; nothing charged"
            ) from exc

    # -- reading --------------------------------------------------------------------------

    def _purchase(self, order_id: str) -> Purchase:
        with self.store.read() as tx:
            order = tx.get_order(order_id)
            if order is None:
                raise NotFoundError(f"no order {order_id}")
            return Purchase(order, tuple(tx.tickets_of(order_id)))

    def _buyer_of(self, order_id: str) -> str:
        return self._purchase(order_id).order.buyer_id

    def _hold_of(self, order_id: str) -> str:
        return self._purchase(order_id).order.hold_id

    def _answer(self, purchase: Purchase) -> Purchase:
        """A final order as the buyer must hear it: declined and refunded ones are errors."""
        order = purchase.order
        if order.status is OrderStatus.FAILED:
            raise PaymentDeclinedError(f"order {order.order_id}: the payment was declined")
        if order.status is OrderStatus.EXPIRED:
            raise HoldExpiredError(
                f"order {order.order_id}: paid after its hold lapsed and the inventory was sold"
                " meanwhile; the payment is refunded"
            )
        return purchase


def _records(tx: InventoryTx, order_id: str) -> tuple[Order, Payment, Hold]:
    order = tx.get_order(order_id)
    payment = tx.get_payment(order_id)
    hold = None if order is None else tx.get_hold(order.hold_id)
    if order is None or payment is None or hold is None:
        raise NotFoundError(f"order {order_id} is incomplete")
    return order, payment, hold


def _confirm(tx: InventoryTx, order: Order, hold: Hold, charge: Charge, now: datetime) -> None:
    """Record the capture, confirm the order and issue its tickets, in the caller's tx."""
    if not tx.move_payment(
        order.order_id, PaymentStatus.PENDING, PaymentStatus.CAPTURED, now, charge.payment_id
    ):
        raise _SettledElsewhereError(order.order_id)
    if not tx.move_order(order.order_id, OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED):
        raise ConflictError(f"order {order.order_id} changed while being confirmed")
    tx.insert_tickets(tickets_for(order.to(OrderStatus.CONFIRMED), hold.claim))


def _count(report: ReconcileReport, order: Order) -> ReconcileReport:
    field = {
        OrderStatus.CONFIRMED: "confirmed",
        OrderStatus.FAILED: "failed",
        OrderStatus.EXPIRED: "refunded",
        OrderStatus.PENDING_PAYMENT: "still_unknown",
    }.get(order.status)
    counted = replace(report, examined=report.examined + 1)
    if field is None:
        return counted
    return replace(counted, **{field: getattr(counted, field) + 1})
