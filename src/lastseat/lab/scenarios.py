"""Race scenarios: what is on sale and what each simulated buyer tries to buy.

A plan is deterministic for a seed, so a run can be repeated exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lastseat.domain.errors import ValidationError
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim
from lastseat.domain.inventory import Event, SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.lab.sessions import Inventory, Step, plan_session, session_cost

SCENARIOS: tuple[str, ...] = ("last-seat", "rush", "group", "ga", "mixed")
CURRENCY = "EUR"
SEAT_PRICE = Money(5_000, CURRENCY)
UNIT_PRICE = Money(2_500, CURRENCY)
EVENT_ID = "race"
SECTION = "A"
POOL_NAME = "standing"
MAX_BUYERS = 1_000_000


@dataclass(frozen=True, slots=True)
class BuyerPlan:
    """One simulated buyer: who, what they try to buy, and the money in their wallet.

    A `mixed` buyer has a session of `steps` instead (`claim` is then its first seat or pool
    claim, for the record only).
    """

    buyer_id: str
    claim: Claim
    wallet: Money
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """The shape of a race; `seats` / `capacity` / `group_size` apply where they make sense."""

    name: str
    buyers: int
    seats: int = 1
    capacity: int = 0
    group_size: int = 4
    max_units: int = 4
    skew: float = 2.0
    poor_fraction: float = 0.05
    flows: int = 3  # mixed: flows per buyer session (each one to four operations)

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValidationError(
                f"unknown scenario {self.name!r}; choose from {', '.join(SCENARIOS)}"
            )
        if not 1 <= self.buyers <= MAX_BUYERS:
            raise ValidationError(f"buyers must be 1..{MAX_BUYERS}")
        if self.seats < 1 or self.capacity < 0 or self.group_size < 1 or self.max_units < 1:
            raise ValidationError("seats, capacity, group size and units must be positive")
        if not 0.0 <= self.poor_fraction <= 1.0:
            raise ValidationError("the poor-buyer fraction must be between 0 and 1")
        if self.skew < 1.0:
            raise ValidationError("skew must be >= 1 (1 = uniform)")
        if self.flows < 1:
            raise ValidationError("a session has at least one flow")
        if self.name in ("group", "mixed") and self.group_size > self.row_length:
            raise ValidationError("a group must fit in one row")

    @property
    def row_length(self) -> int:
        """Seats per row: one row for small events, rows of 20 for larger ones."""
        return min(self.seats, 20)

    def event(self) -> Event:
        """The event the race sells."""
        if self.name == "ga":
            return build_event(
                EVENT_ID, "Race", CURRENCY, [], [(POOL_NAME, self.capacity, UNIT_PRICE)]
            )
        rows = -(-self.seats // self.row_length)
        event = build_event(
            EVENT_ID,
            "Race",
            CURRENCY,
            [SeatBlock(SECTION, rows, self.row_length, SEAT_PRICE)],
            [(POOL_NAME, self.capacity, UNIT_PRICE)] if self.name == "mixed" else [],
        )
        return Event(EVENT_ID, "Race", CURRENCY, event.seats[: self.seats], event.pools)

    def plan(self, seed: int) -> list[BuyerPlan]:
        """Every buyer's attempt, deterministic for `seed`."""
        rng = random.Random(seed)
        if self.name == "mixed":
            return [self._session(rng, index) for index in range(self.buyers)]
        plans = []
        for index in range(self.buyers):
            claim = self._claim(rng)
            price = (UNIT_PRICE if isinstance(claim, PoolClaim) else SEAT_PRICE).times(
                claim.quantity
            )
            poor = rng.random() < self.poor_fraction
            wallet = Money(price.amount_minor - 1, CURRENCY) if poor else price
            plans.append(BuyerPlan(f"buyer-{index:06d}", claim, wallet))
        return plans

    def _session(self, rng: random.Random, index: int) -> BuyerPlan:
        inventory = Inventory(
            EVENT_ID,
            SECTION,
            f"{EVENT_ID}/{POOL_NAME}",
            self._hot_seat,
            self._group,
            self.max_units,
        )
        steps = plan_session(rng, inventory, rng.randint(1, self.flows * 2 - 1))
        cost = session_cost(steps, SEAT_PRICE, UNIT_PRICE)
        poor = cost.amount_minor > 0 and rng.random() < self.poor_fraction
        wallet = Money(cost.amount_minor - 1, CURRENCY) if poor else cost
        first = next(
            (s.claim for s in steps if isinstance(s.claim, SeatClaim | PoolClaim)),
            PoolClaim(EVENT_ID, f"{EVENT_ID}/{POOL_NAME}", 1),
        )
        return BuyerPlan(f"buyer-{index:06d}", first, wallet, steps)

    def _claim(self, rng: random.Random) -> Claim:
        if self.name == "ga":
            return PoolClaim(EVENT_ID, f"{EVENT_ID}/{POOL_NAME}", rng.randint(1, self.max_units))
        if self.name == "group":
            return self._group(rng)
        return self._hot_seat(rng)

    def _hot_seat(self, rng: random.Random) -> SeatClaim:
        # seat index = seats * u**skew puts most buyers on the lowest-numbered seats.
        index = min(self.seats - 1, int(self.seats * rng.random() ** self.skew))
        return SeatClaim(EVENT_ID, (self._seat(index),))

    def _group(self, rng: random.Random) -> SeatClaim:
        row_length = self.row_length
        rows = -(-self.seats // row_length)
        row = min(rows - 1, int(rows * rng.random() ** self.skew))
        last_in_row = min(row_length, self.seats - row * row_length)
        wanted = (
            self.group_size
            if self.name == "group"
            else rng.randint(min(2, self.group_size), self.group_size)
        )
        start = rng.randint(0, max(0, last_in_row - wanted))
        size = min(wanted, last_in_row)
        return SeatClaim(
            EVENT_ID, tuple(self._seat(row * row_length + start + k) for k in range(size))
        )

    def _seat(self, index: int) -> str:
        row, number = divmod(index, self.row_length)
        return seat_id_for(EVENT_ID, SECTION, row + 1, number + 1)


def default_scenario(name: str) -> Scenario:
    """The documented defaults of each scenario."""
    defaults = {
        "last-seat": Scenario("last-seat", buyers=500, seats=1),
        "rush": Scenario("rush", buyers=2_000, seats=1_000),
        "group": Scenario("group", buyers=500, seats=100, group_size=4),
        "ga": Scenario("ga", buyers=2_000, capacity=1_000),
        "mixed": Scenario("mixed", buyers=300, seats=200, capacity=200, group_size=4),
    }
    if name not in defaults:
        raise ValidationError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    return defaults[name]
