"""Wallet use cases: open, top up from the outside world, transfer between buyers."""

from __future__ import annotations

from lastseat.domain.errors import NotFoundError, StateConflictError
from lastseat.domain.inventory import check_id
from lastseat.domain.ledger import (
    AccountKind,
    Transfer,
    TransferKind,
    wallet_account,
    world_account,
)
from lastseat.domain.money import Money
from lastseat.domain.tickets import new_id
from lastseat.service.idempotency import RequestFence
from lastseat.service.ports import Store


class WalletService:
    """Buyers' money, kept in the same database as the inventory it pays for."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open_wallet(self, buyer_id: str, currency: str) -> Money:
        """Open a buyer's wallet (idempotent) and return its balance."""
        check_id("buyer id", buyer_id)
        zero = Money(0, currency)
        with self.store.write() as tx:
            existing = tx.balance(wallet_account(buyer_id))
            if existing is not None and existing.currency != currency:
                raise StateConflictError(
                    f"buyer {buyer_id} already has a {existing.currency} wallet"
                )
            tx.ensure_account(wallet_account(buyer_id), AccountKind.WALLET, currency)
            return existing or zero

    def top_up(self, buyer_id: str, amount: Money, fence: RequestFence | None = None) -> Money:
        """Bring money in from the outside world; return the new balance.

        Under a request fence the transfer id is derived from the request, so a retry that
        takes the request over finds the earlier attempt's top-up instead of paying twice.
        """
        return self._move(
            TransferKind.TOP_UP,
            world_account(amount.currency),
            wallet_account(buyer_id),
            amount,
            open_source=True,
            fence=fence,
        )

    def transfer(self, from_buyer: str, to_buyer: str, amount: Money) -> Money:
        """Move money between two wallets; return the payer's new balance."""
        self._move(
            TransferKind.TRANSFER,
            wallet_account(from_buyer),
            wallet_account(to_buyer),
            amount,
            open_source=False,
        )
        return self.balance(from_buyer)

    def fund_wallets(self, amounts: dict[str, Money]) -> None:
        """Open many wallets and top each one up, in one transaction (set-up of a race)."""
        with self.store.write() as tx:
            for buyer_id, amount in amounts.items():
                check_id("buyer id", buyer_id)
                tx.ensure_account(
                    world_account(amount.currency), AccountKind.WORLD, amount.currency
                )
                tx.ensure_account(wallet_account(buyer_id), AccountKind.WALLET, amount.currency)
                if amount.is_positive():
                    tx.post_transfer(
                        Transfer(
                            new_id("trf"),
                            TransferKind.TOP_UP,
                            world_account(amount.currency),
                            wallet_account(buyer_id),
                            amount,
                        )
                    )

    def balance(self, buyer_id: str) -> Money:
        """A wallet's balance."""
        with self.store.read() as tx:
            found = tx.balance(wallet_account(buyer_id))
        if found is None:
            raise NotFoundError(f"buyer {buyer_id} has no wallet")
        return found

    def _move(
        self,
        kind: TransferKind,
        source: str,
        destination: str,
        amount: Money,
        *,
        open_source: bool,
        fence: RequestFence | None = None,
    ) -> Money:
        transfer_id = fence.derived_id("trf") if fence else new_id("trf")
        transfer = Transfer(transfer_id, kind, source, destination, amount)
        with self.store.write() as tx:
            if fence is not None:
                tx.check_request_fence(fence)
            if open_source:
                tx.ensure_account(source, AccountKind.WORLD, amount.currency)
            if tx.balance(destination) is None:
                raise NotFoundError(f"no wallet {destination.removeprefix('wallet:')}")
            if fence is None or not tx.has_transfer(transfer_id):
                tx.post_transfer(transfer)
            new_balance = tx.balance(destination)
        assert new_balance is not None
        return new_balance
