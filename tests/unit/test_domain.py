"""The domain on its own: money, state machines, claims, inventory, ticket codes, the ledger.

Pure and fast: no store, no clock but plain datetimes. Tests whose docstring starts with
"Regression:" pin a bug found and fixed while the suite was written.
"""

from __future__ import annotations

import base64
import itertools
import operator
import re
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastseat.domain.errors import (
    InsufficientFundsError,
    InvalidTransitionError,
    LastseatError,
    NotFoundError,
    ValidationError,
)
from lastseat.domain.holds import (
    HOLD_TRANSITIONS,
    MAX_HOLD_TTL,
    MAX_SEATS_PER_CLAIM,
    MAX_UNITS_PER_CLAIM,
    Hold,
    HoldStatus,
    PoolClaim,
    SeatClaim,
    expiry_for,
)
from lastseat.domain.inventory import (
    MAX_POOL_CAPACITY,
    MAX_SEATS_PER_EVENT,
    Event,
    Pool,
    Seat,
    SeatBlock,
    build_event,
    check_id,
    check_name,
    seat_id_for,
)
from lastseat.domain.ledger import (
    MAX_AMOUNT_MINOR,
    Account,
    AccountKind,
    Ledger,
    Transfer,
    TransferKind,
    revenue_account,
    wallet_account,
    world_account,
)
from lastseat.domain.money import Money
from lastseat.domain.orders import ORDER_TRANSITIONS, Order, OrderStatus
from lastseat.domain.tickets import TICKET_CODE_BYTES, new_id, new_ticket_code

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EUR = "EUR"


def eur(amount_minor: int) -> Money:
    return Money(amount_minor, EUR)


# -- money -------------------------------------------------------------------------------------


def test_money_keeps_an_integer_amount_of_minor_units_and_its_currency() -> None:
    price = Money(1234, "EUR")

    assert price.amount_minor == 1234
    assert price.currency == "EUR"
    assert isinstance(price.amount_minor, int)


@pytest.mark.parametrize("amount", [12.0, 12.5, Decimal("12"), "12", True, False, None])
def test_money_refuses_anything_but_an_int_amount(amount: object) -> None:
    with pytest.raises(ValidationError):
        Money(amount, EUR)  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["EUR", "USD", "JPY", "CHF"])
def test_money_accepts_three_capital_letter_currency_codes(currency: str) -> None:
    assert Money(1, currency).currency == currency


@pytest.mark.parametrize("currency", ["", "eur", "Eur", "EU", "EURO", "E1R", "EU ", " EUR", "€"])
def test_money_refuses_malformed_currency_codes(currency: str) -> None:
    with pytest.raises(ValidationError):
        Money(1, currency)


def test_money_refuses_a_currency_code_with_a_trailing_newline() -> None:
    """Regression: `^[A-Z]{3}$` let "EUR\\n" through (`$` matches before a final newline).

    src/lastseat/domain/money.py `_CURRENCY` (matched with `.match`): use `re.fullmatch` or
    `\\Z`. The schema's `CHECK (length(currency) = 3)` then refuses the row with a confusing
    ConflictError instead of a ValidationError at the edge.
    """
    with pytest.raises(ValidationError):
        Money(1, "EUR\n")


def test_money_adds_and_subtracts_within_one_currency() -> None:
    assert eur(700) + eur(300) == eur(1000)
    assert eur(700) - eur(300) == eur(400)
    assert eur(300) - eur(700) == eur(-400)


def test_money_multiplies_by_a_whole_quantity() -> None:
    assert eur(250).times(4) == eur(1000)
    assert eur(250).times(0) == eur(0)


@pytest.mark.parametrize("combine", [operator.add, operator.sub], ids=["add", "subtract"])
def test_money_refuses_to_mix_currencies(combine: Callable[[Money, Money], Money]) -> None:
    with pytest.raises(ValidationError):
        combine(Money(100, "EUR"), Money(100, "USD"))


def test_money_is_positive_only_strictly_above_zero() -> None:
    assert eur(1).is_positive()
    assert not eur(0).is_positive()
    assert not eur(-1).is_positive()


@pytest.mark.parametrize(
    ("amount_minor", "text"),
    [(1234, "12.34 EUR"), (5, "0.05 EUR"), (0, "0.00 EUR"), (100, "1.00 EUR"), (-5, "-0.05 EUR")],
)
def test_money_prints_as_major_units_with_two_decimals_and_its_code(
    amount_minor: int, text: str
) -> None:
    assert str(eur(amount_minor)) == text


def test_money_prints_large_amounts_exactly() -> None:
    """Regression: `Money.__str__` divides by 100 as a float, so large amounts print wrongly.

    src/lastseat/domain/money.py `__str__`: `self.amount_minor / 100` rounds through a float
    (DESIGN.md §2: money is never floats). Use `divmod(amount_minor, 100)` instead.
    """
    assert str(eur(10**17 + 1)) == "1000000000000000.01 EUR"


def test_money_is_immutable() -> None:
    price = eur(100)
    with pytest.raises(FrozenInstanceError):
        price.amount_minor = 200  # type: ignore[misc]


# -- order state machine -----------------------------------------------------------------------

ORDER_PAIRS = [(old, new) for old in OrderStatus for new in OrderStatus]
ORDER_ALLOWED = [(old, new) for old, new in ORDER_PAIRS if new in ORDER_TRANSITIONS[old]]
ORDER_FORBIDDEN = [(old, new) for old, new in ORDER_PAIRS if new not in ORDER_TRANSITIONS[old]]


def order_in(status: OrderStatus) -> Order:
    return Order("ord_1", "alice", "ev1", "hld_1", status, eur(1000), 1, NOW)


def test_the_order_table_names_every_status_and_only_the_documented_moves() -> None:
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert set(ORDER_ALLOWED) == {
        (OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED),
        (OrderStatus.PENDING_PAYMENT, OrderStatus.FAILED),
        (OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED),
        (OrderStatus.CONFIRMED, OrderStatus.REFUNDED),
    }


@pytest.mark.parametrize(("old", "new"), ORDER_ALLOWED, ids=str)
def test_every_allowed_order_transition_moves_the_order(old: OrderStatus, new: OrderStatus) -> None:
    before = order_in(old)

    after = before.to(new)

    assert after.status is new
    assert after.order_id == before.order_id
    assert after.amount == before.amount
    assert before.status is old  # orders are values: the original is unchanged


@pytest.mark.parametrize(("old", "new"), ORDER_FORBIDDEN, ids=str)
def test_every_other_order_transition_raises_invalid_transition(
    old: OrderStatus, new: OrderStatus
) -> None:
    with pytest.raises(InvalidTransitionError):
        order_in(old).to(new)


@pytest.mark.parametrize(
    "status",
    [OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.REFUNDED],
)
def test_failed_expired_and_refunded_orders_are_final(status: OrderStatus) -> None:
    assert ORDER_TRANSITIONS[status] == frozenset()


# -- hold state machine ------------------------------------------------------------------------

HOLD_PAIRS = [(old, new) for old in HoldStatus for new in HoldStatus]
HOLD_ALLOWED = [(old, new) for old, new in HOLD_PAIRS if new in HOLD_TRANSITIONS[old]]
HOLD_FORBIDDEN = [(old, new) for old, new in HOLD_PAIRS if new not in HOLD_TRANSITIONS[old]]


def hold_in(status: HoldStatus, expires_at: datetime = NOW + timedelta(minutes=10)) -> Hold:
    return Hold("hld_1", "alice", SeatClaim("ev1", ("ev1/A/0001/0001",)), status, NOW, expires_at)


def test_the_hold_table_names_every_status_and_only_leaves_active() -> None:
    assert set(HOLD_TRANSITIONS) == set(HoldStatus)
    assert set(HOLD_ALLOWED) == {
        (HoldStatus.ACTIVE, HoldStatus.CONVERTED),
        (HoldStatus.ACTIVE, HoldStatus.RELEASED),
        (HoldStatus.ACTIVE, HoldStatus.EXPIRED),
        # a lapsed hold may still be paid by claiming its inventory again
        (HoldStatus.EXPIRED, HoldStatus.CONVERTED),
    }


@pytest.mark.parametrize(("old", "new"), HOLD_ALLOWED, ids=str)
def test_every_allowed_hold_transition_moves_the_hold(old: HoldStatus, new: HoldStatus) -> None:
    before = hold_in(old)

    after = before.to(new)

    assert after.status is new
    assert after.hold_id == before.hold_id
    assert after.claim == before.claim
    assert before.status is old


@pytest.mark.parametrize(("old", "new"), HOLD_FORBIDDEN, ids=str)
def test_every_other_hold_transition_raises_invalid_transition(
    old: HoldStatus, new: HoldStatus
) -> None:
    with pytest.raises(InvalidTransitionError):
        hold_in(old).to(new)


def test_an_active_hold_lapses_exactly_at_its_expiry_time() -> None:
    expires_at = NOW + timedelta(minutes=10)
    hold = hold_in(HoldStatus.ACTIVE, expires_at)

    assert not hold.is_lapsed(NOW)
    assert not hold.is_lapsed(expires_at - timedelta(microseconds=1))
    assert hold.is_lapsed(expires_at)
    assert hold.is_lapsed(expires_at + timedelta(days=1))


@pytest.mark.parametrize("status", [HoldStatus.CONVERTED, HoldStatus.RELEASED, HoldStatus.EXPIRED])
def test_a_hold_that_is_no_longer_active_never_counts_as_lapsed(status: HoldStatus) -> None:
    hold = hold_in(status, NOW)

    assert not hold.is_lapsed(NOW + timedelta(days=1))


@pytest.mark.parametrize("ttl", [timedelta(seconds=1), timedelta(minutes=10), MAX_HOLD_TTL])
def test_expiry_is_now_plus_a_ttl_between_one_second_and_the_maximum(ttl: timedelta) -> None:
    assert expiry_for(NOW, ttl) == NOW + ttl


@pytest.mark.parametrize(
    "ttl",
    [
        timedelta(0),
        timedelta(seconds=-1),
        timedelta(milliseconds=999),
        MAX_HOLD_TTL + timedelta(microseconds=1),
        timedelta(days=1),
    ],
)
def test_expiry_refuses_a_ttl_outside_the_limits(ttl: timedelta) -> None:
    with pytest.raises(ValidationError):
        expiry_for(NOW, ttl)


# -- claims ------------------------------------------------------------------------------------


def test_a_seat_claim_sorts_its_seat_ids_into_lock_order() -> None:
    claim = SeatClaim("ev1", ("ev1/B/0001/0001", "ev1/A/0002/0001", "ev1/A/0001/0003"))

    assert claim.seat_ids == ("ev1/A/0001/0003", "ev1/A/0002/0001", "ev1/B/0001/0001")
    assert claim.quantity == 3


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20, unique=True).map(
        lambda names: [f"ev1/{name}" for name in names]
    )
)
def test_a_seat_claim_is_the_same_whatever_order_the_seats_were_named_in(
    seat_ids: list[str],
) -> None:
    assert SeatClaim("ev1", tuple(seat_ids)) == SeatClaim("ev1", tuple(reversed(seat_ids)))
    assert list(SeatClaim("ev1", tuple(seat_ids)).seat_ids) == sorted(seat_ids)


def test_a_seat_claim_refuses_a_seat_named_twice() -> None:
    with pytest.raises(ValidationError):
        SeatClaim("ev1", ("ev1/A/0001/0001", "ev1/A/0001/0002", "ev1/A/0001/0001"))


@pytest.mark.parametrize("count", [0, MAX_SEATS_PER_CLAIM + 1])
def test_a_seat_claim_refuses_too_few_or_too_many_seats(count: int) -> None:
    with pytest.raises(ValidationError):
        SeatClaim("ev1", tuple(f"ev1/A/0001/{n:04d}" for n in range(count)))


def test_a_seat_claim_may_name_up_to_the_maximum_number_of_seats() -> None:
    claim = SeatClaim("ev1", tuple(f"ev1/A/0001/{n:04d}" for n in range(MAX_SEATS_PER_CLAIM)))

    assert claim.quantity == MAX_SEATS_PER_CLAIM


@pytest.mark.parametrize("quantity", [1, 2, MAX_UNITS_PER_CLAIM])
def test_a_pool_claim_accepts_quantities_within_the_limits(quantity: int) -> None:
    assert PoolClaim("ev1", "ev1/standing", quantity).quantity == quantity


@pytest.mark.parametrize("quantity", [0, -1, MAX_UNITS_PER_CLAIM + 1, 10**9])
def test_a_pool_claim_refuses_quantities_outside_the_limits(quantity: int) -> None:
    with pytest.raises(ValidationError):
        PoolClaim("ev1", "ev1/standing", quantity)


def test_a_pool_claim_refuses_a_quantity_that_is_not_an_int() -> None:
    """Regression: `PoolClaim(…, quantity=1.5)` is accepted; only the range is checked.

    src/lastseat/domain/holds.py `PoolClaim.__post_init__`: unlike `Money`, it does not check
    the type, so a JSON float from an entry point reaches SQL (`price_minor * 1.5`, a REAL
    `held` counter) and fails late with a TypeError in `range(quantity)`.
    """
    with pytest.raises(ValidationError):
        PoolClaim("ev1", "ev1/standing", 1.5)  # type: ignore[arg-type]


# -- inventory ---------------------------------------------------------------------------------


def test_a_seat_block_lays_out_rows_times_seats_per_row_seats() -> None:
    block = SeatBlock("Stalls", 2, 3, eur(1000))

    seats = block.seats("ev1")

    assert [(s.row, s.number) for s in seats] == [(r, n) for r in (1, 2) for n in (1, 2, 3)]
    assert {s.section for s in seats} == {"Stalls"}
    assert {s.price for s in seats} == {eur(1000)}
    assert seats[0].seat_id == "ev1/Stalls/0001/0001"


@pytest.mark.parametrize(
    ("section", "rows", "seats_per_row", "price"),
    [
        ("", 1, 1, eur(100)),
        (" A", 1, 1, eur(100)),
        ("A/B", 1, 1, eur(100)),
        ("A" * 65, 1, 1, eur(100)),
        ("A", 0, 1, eur(100)),
        ("A", 1, 0, eur(100)),
        ("A", -1, 5, eur(100)),
        ("A", MAX_SEATS_PER_EVENT + 1, 1, eur(100)),
        ("A", 1000, 201, eur(100)),
        ("A", 1, 1, eur(0)),
        ("A", 1, 1, eur(-100)),
    ],
)
def test_a_seat_block_refuses_bad_names_shapes_and_prices(
    section: str, rows: int, seats_per_row: int, price: Money
) -> None:
    with pytest.raises(ValidationError):
        SeatBlock(section, rows, seats_per_row, price)


@pytest.mark.parametrize("capacity", [0, 1, MAX_POOL_CAPACITY])
def test_a_pool_accepts_capacities_within_the_limits(capacity: int) -> None:
    assert Pool("ev1/standing", "standing", capacity, eur(500)).capacity == capacity


@pytest.mark.parametrize(
    ("capacity", "price"),
    [(-1, eur(500)), (MAX_POOL_CAPACITY + 1, eur(500)), (10, eur(0)), (10, eur(-1))],
)
def test_a_pool_refuses_a_bad_capacity_or_price(capacity: int, price: Money) -> None:
    with pytest.raises(ValidationError):
        Pool("ev1/standing", "standing", capacity, price)


def test_build_event_makes_seats_from_blocks_and_pools_named_under_the_event() -> None:
    event = build_event(
        "ev1",
        "Opening Night",
        EUR,
        [SeatBlock("A", 1, 2, eur(1000)), SeatBlock("B", 1, 1, eur(800))],
        [("standing", 100, eur(500)), ("balcony", 20, eur(700))],
    )

    assert [s.seat_id for s in event.seats] == [
        "ev1/A/0001/0001",
        "ev1/A/0001/0002",
        "ev1/B/0001/0001",
    ]
    assert [(p.pool_id, p.capacity) for p in event.pools] == [
        ("ev1/standing", 100),
        ("ev1/balcony", 20),
    ]


def test_an_event_needs_at_least_one_seat_or_pool() -> None:
    with pytest.raises(ValidationError):
        Event("ev1", "Empty", EUR)


def test_an_event_with_only_a_pool_or_only_seats_is_fine() -> None:
    assert build_event("ev1", "GA", EUR, [], [("standing", 10, eur(500))]).pools
    assert build_event("ev2", "Seated", EUR, [SeatBlock("A", 1, 1, eur(500))], []).seats


def test_an_event_refuses_prices_in_another_currency() -> None:
    with pytest.raises(ValidationError):
        build_event("ev1", "Show", EUR, [SeatBlock("A", 1, 1, Money(1000, "USD"))], [])
    with pytest.raises(ValidationError):
        build_event("ev1", "Show", EUR, [], [("standing", 10, Money(500, "USD"))])


def test_an_event_refuses_two_seats_in_the_same_position() -> None:
    with pytest.raises(ValidationError):
        build_event(
            "ev1",
            "Show",
            EUR,
            [SeatBlock("A", 1, 2, eur(100)), SeatBlock("A", 1, 1, eur(100))],
            [],
        )


def test_an_event_refuses_two_pools_with_the_same_name() -> None:
    with pytest.raises(ValidationError):
        build_event("ev1", "Show", EUR, [], [("standing", 1, eur(5)), ("standing", 2, eur(5))])


def test_an_event_refuses_more_seats_than_the_maximum() -> None:
    seat = Seat("ev1/A/0001/0001", "A", 1, 1, eur(100))

    with pytest.raises(ValidationError, match="at most"):
        Event("ev1", "Huge", EUR, (seat,) * (MAX_SEATS_PER_EVENT + 1))


@pytest.mark.parametrize("name", ["", " Show", "Show/1", "x" * 65, "Show\tTime"])
def test_an_event_refuses_a_malformed_name(name: str) -> None:
    with pytest.raises(ValidationError):
        build_event("ev1", name, EUR, [SeatBlock("A", 1, 1, eur(100))], [])


@pytest.mark.parametrize("pool_name", ["", "a/b", " standing"])
def test_build_event_refuses_a_malformed_pool_name(pool_name: str) -> None:
    with pytest.raises(ValidationError):
        build_event("ev1", "Show", EUR, [], [(pool_name, 10, eur(500))])


@pytest.mark.parametrize("event_id", ["ev1/A", "ev 1"])
def test_an_event_refuses_a_malformed_event_id(event_id: str) -> None:
    """Regression: the event id is never validated (only the name is).

    src/lastseat/domain/inventory.py `Event.__post_init__` (and `build_event`) never call
    `check_id("event id", …)`, so an id with '/' or spaces is stored and makes the
    `event/section/row/number` seat ids and `event/pool` pool ids ambiguous.
    """
    with pytest.raises(ValidationError):
        build_event(event_id, "Show", EUR, [SeatBlock("A", 1, 1, eur(100))], [])


@pytest.mark.parametrize("value", ["alice", "a", "Bob_2", "x:y.z-1", "9" * 64])
def test_check_id_accepts_identifiers(value: str) -> None:
    assert check_id("buyer id", value) == value


@pytest.mark.parametrize("value", ["", "-alice", "al ice", "al/ice", "x" * 65, "ä"])
def test_check_id_refuses_malformed_identifiers(value: str) -> None:
    with pytest.raises(ValidationError):
        check_id("buyer id", value)


@pytest.mark.parametrize(
    ("check", "value"),
    [(check_id, "alice\n"), (check_name, "Show\n")],
    ids=["check_id", "check_name"],
)
def test_identifiers_and_names_refuse_a_trailing_newline(
    check: Callable[[str, str], str], value: str
) -> None:
    """Regression: `_ID` and `_NAME` end in `$`, which also matches before a final newline.

    src/lastseat/domain/inventory.py `_NAME` / `_ID` (matched with `.match`): "alice\\n" is a
    valid buyer id and "Show\\n" a valid event name. Use `re.fullmatch` or `\\Z`.
    """
    with pytest.raises(ValidationError):
        check("kind", value)


def test_seat_ids_are_zero_padded_so_they_sort_like_numbers() -> None:
    assert seat_id_for("ev1", "A", 2, 10) == "ev1/A/0002/0010"
    assert seat_id_for("ev1", "A", 2, 10) > seat_id_for("ev1", "A", 2, 9)
    assert seat_id_for("ev1", "A", 10, 1) > seat_id_for("ev1", "A", 9, 99)


def test_a_seat_block_lists_its_seats_in_lock_order() -> None:
    seats = SeatBlock("A", 12, 12, eur(100)).seats("ev1")
    ids = [s.seat_id for s in seats]

    assert ids == sorted(ids)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "Stalls"]), st.integers(1, 9999), st.integers(1, 9999)
        ),
        min_size=2,
        max_size=30,
        unique=True,
    )
)
def test_seat_ids_sort_by_section_then_row_then_number(
    positions: list[tuple[str, int, int]],
) -> None:
    by_id = sorted(positions, key=lambda p: seat_id_for("ev1", *p))

    assert by_id == sorted(positions)


def test_a_seat_block_is_limited_to_what_four_digit_ids_keep_in_lock_order() -> None:
    ids = [s.seat_id for s in SeatBlock("A", 9_999, 1, eur(100)).seats("ev1")]
    assert ids == sorted(ids)
    with pytest.raises(ValidationError):
        SeatBlock("A", 10_000, 1, eur(100))


# -- tickets -----------------------------------------------------------------------------------

_URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_a_ticket_code_is_128_random_bits_in_urlsafe_base64() -> None:
    code = new_ticket_code()

    assert TICKET_CODE_BYTES * 8 == 128
    assert _URLSAFE.match(code)
    assert len(code) == 22
    assert len(base64.urlsafe_b64decode(code + "==")) == TICKET_CODE_BYTES


def test_ticket_codes_do_not_repeat_over_many_draws() -> None:
    codes = [new_ticket_code() for _ in range(20_000)]

    assert len(set(codes)) == len(codes)
    assert all(_URLSAFE.match(code) for code in codes)


def test_new_ids_carry_their_prefix_and_do_not_repeat() -> None:
    ids = [new_id("ord") for _ in range(5_000)]

    assert all(re.fullmatch(r"ord_[0-9a-f]{20}", i) for i in ids)
    assert len(set(ids)) == len(ids)


# -- ledger ------------------------------------------------------------------------------------

WORLD = world_account(EUR)
REVENUE = revenue_account(EUR)
ALICE = wallet_account("alice")
BOB = wallet_account("bob")


def fresh_ledger() -> Ledger:
    return Ledger(
        [
            Account(WORLD, AccountKind.WORLD, EUR),
            Account(REVENUE, AccountKind.REVENUE, EUR),
            Account(ALICE, AccountKind.WALLET, EUR),
            Account(BOB, AccountKind.WALLET, EUR),
            Account(wallet_account("yves"), AccountKind.WALLET, "USD"),
        ]
    )


_transfer_ids = itertools.count()


def transfer(
    source: str, destination: str, amount_minor: int, kind: TransferKind = TransferKind.TRANSFER
) -> Transfer:
    return Transfer(f"trf_{next(_transfer_ids)}", kind, source, destination, eur(amount_minor))


def balances(ledger: Ledger) -> dict[str, int]:
    return {a.account_id: a.balance_minor for a in ledger.accounts.values()}


def test_a_transfer_is_two_entries_that_sum_to_zero() -> None:
    entries = transfer(ALICE, BOB, 250).entries()

    assert entries == ((ALICE, -250), (BOB, 250))
    assert sum(amount for _, amount in entries) == 0


@pytest.mark.parametrize("amount_minor", [0, -1, MAX_AMOUNT_MINOR + 1])
def test_a_transfer_moves_a_positive_bounded_amount(amount_minor: int) -> None:
    with pytest.raises(ValidationError):
        transfer(ALICE, BOB, amount_minor)


def test_a_transfer_needs_two_different_accounts() -> None:
    with pytest.raises(ValidationError):
        transfer(ALICE, ALICE, 1)


def test_a_top_up_takes_the_world_negative_and_keeps_the_total_at_zero() -> None:
    ledger = fresh_ledger()

    ledger.post(transfer(WORLD, ALICE, 5_000, TransferKind.TOP_UP))

    assert balances(ledger)[WORLD] == -5_000
    assert balances(ledger)[ALICE] == 5_000
    assert ledger.total_minor(EUR) == 0


def test_a_purchase_and_its_refund_move_money_there_and_back() -> None:
    ledger = fresh_ledger()
    ledger.post(transfer(WORLD, ALICE, 5_000, TransferKind.TOP_UP))

    ledger.post(transfer(ALICE, REVENUE, 1_200, TransferKind.PURCHASE))
    assert (balances(ledger)[ALICE], balances(ledger)[REVENUE]) == (3_800, 1_200)

    ledger.post(transfer(REVENUE, ALICE, 1_200, TransferKind.REFUND))
    assert (balances(ledger)[ALICE], balances(ledger)[REVENUE]) == (5_000, 0)
    assert ledger.total_minor(EUR) == 0
    assert len(ledger.transfers) == 3


def test_a_wallet_may_be_spent_down_to_exactly_zero() -> None:
    ledger = fresh_ledger()
    ledger.post(transfer(WORLD, ALICE, 1_000, TransferKind.TOP_UP))

    ledger.post(transfer(ALICE, BOB, 1_000))

    assert balances(ledger)[ALICE] == 0
    assert balances(ledger)[BOB] == 1_000


@pytest.mark.parametrize(
    ("source", "destination", "amount", "error"),
    [
        (ALICE, BOB, eur(1_001), InsufficientFundsError),
        (REVENUE, ALICE, eur(1), InsufficientFundsError),
        (ALICE, wallet_account("nobody"), eur(1), NotFoundError),
        (wallet_account("nobody"), ALICE, eur(1), NotFoundError),
        (ALICE, wallet_account("yves"), eur(1), ValidationError),
        (ALICE, BOB, Money(1, "USD"), ValidationError),
    ],
    ids=[
        "overdraw-wallet",
        "overdraw-revenue",
        "unknown-destination",
        "unknown-source",
        "destination-in-other-currency",
        "amount-in-other-currency",
    ],
)
def test_a_failed_post_raises_and_changes_nothing(
    source: str, destination: str, amount: Money, error: type[LastseatError]
) -> None:
    ledger = fresh_ledger()
    ledger.post(transfer(WORLD, ALICE, 1_000, TransferKind.TOP_UP))
    before = balances(ledger)
    posted = list(ledger.transfers)

    with pytest.raises(error):
        ledger.post(Transfer("trf_bad", TransferKind.TRANSFER, source, destination, amount))

    assert balances(ledger) == before
    assert ledger.transfers == posted


def test_opening_an_account_again_keeps_its_balance() -> None:
    ledger = fresh_ledger()
    ledger.post(transfer(WORLD, ALICE, 700, TransferKind.TOP_UP))

    ledger.open(Account(ALICE, AccountKind.WALLET, EUR))

    assert balances(ledger)[ALICE] == 700


ACCOUNTS = [WORLD, REVENUE, ALICE, BOB]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(ACCOUNTS),
            st.sampled_from(ACCOUNTS),
            st.integers(1, 5_000),
        ),
        max_size=40,
    )
)
def test_any_sequence_of_posts_conserves_money_and_keeps_non_world_balances_non_negative(
    moves: list[tuple[str, str, int]],
) -> None:
    ledger = fresh_ledger()
    for source, destination, amount_minor in moves:
        if source == destination:
            continue
        before = balances(ledger)
        try:
            ledger.post(transfer(source, destination, amount_minor))
        except InsufficientFundsError:
            assert balances(ledger) == before
            assert before[source] < amount_minor
        assert ledger.total_minor(EUR) == 0
        for account in ledger.accounts.values():
            if account.kind is not AccountKind.WORLD:
                assert account.balance_minor >= 0, account
    assert sum(amount for t in ledger.transfers for _, amount in t.entries()) == 0
