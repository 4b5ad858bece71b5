"""The internal wallet ledger as a payment provider: charges are ledger transfers.

It is `transactional`: the checkout charges wallets inside the claiming transaction itself
(BookingService), so a failed charge rolls the claim back with it. `charge` and `refund` here
serve callers that pay outside such a transaction; each is its own transaction, idempotent by
its key (the key is the transfer id, so posting it twice is impossible).
"""

from __future__ import annotations

from lastseat.domain.errors import InsufficientFundsError, NotFoundError
from lastseat.domain.ledger import (
    AccountKind,
    Transfer,
    TransferKind,
    revenue_account,
    wallet_account,
)
from lastseat.domain.money import Money
from lastseat.service.payments import Charge, ChargeStatus, Refund
from lastseat.service.ports import Store


class WalletPaymentProvider:
    """Charges buyers' wallets into the event revenue accounts of the same database."""

    name = "wallet"
    transactional = True

    def __init__(self, store: Store) -> None:
        self.store = store

    def charge(self, payment_key: str, buyer_id: str, amount: Money) -> Charge:
        """Move `amount` from the buyer's wallet to revenue, once per key; no money: declined."""
        captured = Charge(payment_key, ChargeStatus.CAPTURED, payment_key, amount)
        try:
            with self.store.write() as tx:
                if tx.transfer_parties(payment_key) is not None:
                    return captured
                revenue = revenue_account(amount.currency, payment_key)
                tx.ensure_account(revenue, AccountKind.REVENUE, amount.currency)
                tx.post_transfer(
                    Transfer(
                        payment_key,
                        TransferKind.PURCHASE,
                        wallet_account(buyer_id),
                        revenue,
                        amount,
                    )
                )
        except InsufficientFundsError:
            return Charge(payment_key, ChargeStatus.DECLINED, None, amount, "insufficient_funds")
        return captured

    def refund(self, refund_key: str, payment_id: str, amount: Money) -> Refund:
        """Move `amount` of a charge back to the wallet it came from, once per key."""
        refund = Refund(refund_key, refund_key, payment_id, amount)
        with self.store.write() as tx:
            if tx.transfer_parties(refund_key) is not None:
                return refund
            parties = tx.transfer_parties(payment_id)
            if parties is None:
                raise NotFoundError(f"no wallet charge {payment_id}")
            wallet, revenue = parties
            tx.post_transfer(Transfer(refund_key, TransferKind.REFUND, revenue, wallet, amount))
        return refund

    def close(self) -> None:
        """Nothing to release: the store belongs to the caller."""
