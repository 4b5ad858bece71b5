"""Rules for money: one charge per confirmed order (invariant 3), money is conserved (4)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence

from lastseat.domain.ledger import AccountKind, TransferKind
from lastseat.domain.orders import OrderStatus
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.violations import Violation
from lastseat.service.snapshot import OrderRow, TransferRow

# Orders whose money was taken and may stay recorded: kept, or kept and given back.
_CHARGED = frozenset({OrderStatus.CONFIRMED, OrderStatus.REFUNDED})


def extra_purchases(facts: Facts) -> int:
    """Purchase transfers beyond the first for each order."""
    return sum(
        len(transfers) - 1
        for (_, kind), transfers in facts.money_by_order.items()
        if kind == TransferKind.PURCHASE and len(transfers) > 1
    )


# --- invariant 3: one charge per confirmed order ----------------------------------------------


def double_charges(facts: Facts) -> Iterator[Violation]:
    """Orders with two purchase transfers, or two refunds."""
    for (order_id, kind), transfers in sorted(facts.money_by_order.items()):
        if kind in (TransferKind.PURCHASE, TransferKind.REFUND) and len(transfers) > 1:
            ids = ", ".join(sorted(t.transfer_id for t in transfers))
            yield Violation("double_charge", f"order {order_id} has {kind} transfers {ids}")


def charges_without_order(facts: Facts) -> Iterator[Violation]:
    """Purchases or refunds their order's state does not explain; refunds never paid back."""
    for transfer in facts.snapshot.transfers:
        order = facts.orders.get(transfer.order_id or "")
        state = order.status if order is not None else "missing"
        if (transfer.kind == TransferKind.PURCHASE and state not in _CHARGED) or (
            transfer.kind == TransferKind.REFUND and state != OrderStatus.REFUNDED
        ):
            yield Violation(
                "charge_without_order",
                f"{transfer.kind} {transfer.transfer_id} is for order {transfer.order_id},"
                f" which is {state}",
            )
    for order in facts.orders.values():
        if (
            order.status == OrderStatus.REFUNDED
            and not facts.paid_externally(order.order_id)
            and not _money(facts, order, TransferKind.REFUND)
        ):
            yield Violation(
                "charge_without_order", f"order {order.order_id} is refunded without a refund"
            )


def confirmed_without_charge(facts: Facts) -> Iterator[Violation]:
    """Confirmed (or refunded) orders paid from a wallet with no purchase transfer."""
    for order in facts.orders.values():
        if (
            order.status in _CHARGED
            and not facts.paid_externally(order.order_id)
            and not _money(facts, order, TransferKind.PURCHASE)
        ):
            yield Violation(
                "confirmed_without_charge",
                f"order {order.order_id} of {order.buyer_id} is {order.status} but was never"
                " charged",
            )


def tickets_without_order(facts: Facts) -> Iterator[Violation]:
    """Valid tickets whose order is missing or not confirmed."""
    for order_id, tickets in sorted(facts.valid_by_order.items()):
        order = facts.orders.get(order_id)
        if order is None or order.status != OrderStatus.CONFIRMED:
            state = order.status if order is not None else "missing"
            yield Violation(
                "ticket_without_order",
                f"order {order_id} is {state} but has {len(tickets)} valid tickets",
            )


def _money(facts: Facts, order: OrderRow, kind: TransferKind) -> Sequence[TransferRow]:
    return facts.money_by_order.get((order.order_id, kind), ())


# --- invariant 4: money is conserved ----------------------------------------------------------


def money_not_conserved(facts: Facts) -> Iterator[Violation]:
    """Currencies not summing to zero, malformed transfers, balances not their entries' sum."""
    totals: Counter[str] = Counter()
    for account in facts.snapshot.accounts:
        totals[account.currency] += account.balance_minor
    for currency, total in sorted(totals.items()):
        if total != 0:
            yield Violation("money_not_conserved", f"{currency} accounts sum to {total}, not 0")
    yield from _malformed_transfers(facts)
    yield from _balances_off_entries(facts)


def _malformed_transfers(facts: Facts) -> Iterator[Violation]:
    entries: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for entry in facts.snapshot.entries:
        entries[entry.transfer_id].append((entry.account_id, entry.amount_minor))
    for t in facts.snapshot.transfers:
        expected = sorted([(t.source, -t.amount_minor), (t.destination, t.amount_minor)])
        actual = sorted(entries.pop(t.transfer_id, []))
        if actual != expected:
            yield Violation(
                "money_not_conserved",
                f"transfer {t.transfer_id} is recorded as {actual}, not {expected}",
            )
    # Whatever is left was posted without any transfer to explain it.
    for transfer_id in sorted(entries):
        yield Violation("money_not_conserved", f"entries of unknown transfer {transfer_id}")


def _balances_off_entries(facts: Facts) -> Iterator[Violation]:
    sums: Counter[str] = Counter()
    for entry in facts.snapshot.entries:
        sums[entry.account_id] += entry.amount_minor
    balances = {a.account_id: a.balance_minor for a in facts.snapshot.accounts}
    for account_id in sorted(balances.keys() | sums.keys()):
        balance = balances.get(account_id)
        if balance is None:
            yield Violation("money_not_conserved", f"entries name unknown account {account_id}")
        elif balance != sums[account_id]:
            yield Violation(
                "money_not_conserved",
                f"account {account_id} holds {balance} but its entries sum to {sums[account_id]}",
            )


def negative_balances(facts: Facts) -> Iterator[Violation]:
    """Accounts other than `world` below zero."""
    for account in facts.snapshot.accounts:
        if account.kind != AccountKind.WORLD and account.balance_minor < 0:
            yield Violation(
                "negative_balance",
                f"{account.kind} account {account.account_id} holds {account.balance_minor}",
            )
