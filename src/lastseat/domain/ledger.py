"""Wallets as a double-entry ledger.

Every transfer moves a positive amount from one account to another and is recorded as two
entries that sum to zero, so the sum over all accounts of a currency never changes. Money
enters the system through the `world` account (top-ups), which is the only account allowed to
go negative: its balance is minus the money buyers have put in.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from lastseat.domain.errors import (
    InsufficientFundsError,
    LastseatError,
    NotFoundError,
    StateConflictError,
    ValidationError,
)
from lastseat.domain.money import Money

MAX_AMOUNT_MINOR = 10**12
REVENUE_SHARDS = 16


class AccountKind(enum.StrEnum):
    """Who owns an account, which decides whether it may go negative."""

    WALLET = "wallet"
    REVENUE = "revenue"
    WORLD = "world"


class TransferKind(enum.StrEnum):
    """Why money moved."""

    TOP_UP = "top_up"
    PURCHASE = "purchase"
    REFUND = "refund"
    TRANSFER = "transfer"


def wallet_account(buyer_id: str) -> str:
    """The account id of a buyer's wallet."""
    return f"wallet:{buyer_id}"


def revenue_account(currency: str, order_id: str = "") -> str:
    """The revenue account that receives one order's money (and pays its refund).

    Revenue is split over REVENUE_SHARDS accounts per currency, chosen by the order id: with
    one account, every sale of every event would update (and, on PostgreSQL, lock) one row
    and wait behind every other sale's commit; at SERIALIZABLE they would abort each other.
    The sum over the shards is the revenue.
    """
    shard = zlib.crc32(order_id.encode()) % REVENUE_SHARDS
    return f"revenue:{currency}:{shard:02d}"


def world_account(currency: str) -> str:
    """The outside world, where top-ups come from."""
    return f"world:{currency}"


def owner_of(account_id: str) -> str:
    """Whose money an account holds, in words a buyer reads (never the account id itself)."""
    kind, _, rest = account_id.partition(":")
    if kind == AccountKind.WALLET.value:
        return f"the wallet of buyer {rest}"
    if kind == AccountKind.REVENUE.value:
        return "the revenue account"
    return "the outside world"


def short_of(account_id: str, amount: Money) -> InsufficientFundsError:
    """The refusal of a debit the account cannot cover: says how much, not which account.

    Problem details reach buyers, so they carry no internal identifiers (issue 8, finding 4);
    the paying wallet is the buyer's own in a purchase and the source in an operator's
    transfer, so "the wallet" reads right to both.
    """
    if account_id.startswith(f"{AccountKind.WALLET.value}:"):
        return InsufficientFundsError(f"the wallet holds less than {amount}")
    return InsufficientFundsError(f"{owner_of(account_id)} holds less than {amount}")


def refused_debit(account_id: str, amount: Money, held_currency: str | None) -> LastseatError:
    """Why an account refused a debit of `amount`, given the currency it holds (None: it does
    not exist): in a buyer's words when the account is a buyer's wallet."""
    kind, _, owner = account_id.partition(":")
    wallet = kind == AccountKind.WALLET.value
    if held_currency is None:
        if wallet:
            return NotFoundError(f"buyer {owner} has no wallet")
        return missing_account(account_id, amount.currency)
    if held_currency != amount.currency:
        if wallet:
            return StateConflictError(
                f"buyer {owner} pays in {held_currency}, the event sells in {amount.currency}"
            )
        return missing_account(account_id, amount.currency)
    return short_of(account_id, amount)


def missing_account(account_id: str, currency: str) -> NotFoundError:
    """The refusal of a transfer to or from an account that does not exist in `currency`."""
    return NotFoundError(f"{owner_of(account_id)} has no {currency} account")


def may_go_negative(kind: AccountKind) -> bool:
    """Only the outside world may owe money."""
    return kind is AccountKind.WORLD


@dataclass(frozen=True, slots=True)
class Transfer:
    """A move of money between two accounts of one currency."""

    transfer_id: str
    kind: TransferKind
    source: str
    destination: str
    amount: Money
    order_id: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.amount.amount_minor <= MAX_AMOUNT_MINOR:
            raise ValidationError(f"a transfer moves 1..{MAX_AMOUNT_MINOR} minor units")
        if self.source == self.destination:
            raise ValidationError("a transfer needs two different accounts")

    def entries(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """The two ledger entries (account, signed amount) that record this transfer."""
        return (self.source, -self.amount.amount_minor), (
            self.destination,
            self.amount.amount_minor,
        )


@dataclass(slots=True)
class Account:
    """A balance in one currency."""

    account_id: str
    kind: AccountKind
    currency: str
    balance_minor: int = 0


class Ledger:
    """An in-memory double-entry book: the reference model the SQL stores must agree with."""

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self.accounts = {a.account_id: a for a in accounts}
        self.transfers: list[Transfer] = []

    def open(self, account: Account) -> None:
        """Add an account with its opening balance (normally zero)."""
        self.accounts.setdefault(account.account_id, account)

    def post(self, transfer: Transfer) -> None:
        """Apply a transfer, or raise without changing anything."""
        source = self._get(transfer.source)
        destination = self._get(transfer.destination)
        if {source.currency, destination.currency} != {transfer.amount.currency}:
            raise ValidationError("both accounts must be in the transfer's currency")
        new_balance = source.balance_minor - transfer.amount.amount_minor
        if new_balance < 0 and not may_go_negative(source.kind):
            raise short_of(source.account_id, transfer.amount)
        source.balance_minor = new_balance
        destination.balance_minor += transfer.amount.amount_minor
        self.transfers.append(transfer)

    def total_minor(self, currency: str) -> int:
        """Sum over every account of one currency; zero while money is conserved."""
        return sum(a.balance_minor for a in self.accounts.values() if a.currency == currency)

    def _get(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise NotFoundError(f"{owner_of(account_id)} has no account") from None
