"""The `mixed` scenario's buyer sessions: what a buyer of a real on-sale does, planned ahead.

A session is a few flows, each one of: a quick buy (a hot seat, a group of adjacent seats, GA
units or best-available seats of the section), a hold that is then paid, released or left to
lapse, or a look at the event's availability. Holds may be short (1-3 s) and paid late, past
their expiry, so the payment must re-claim the inventory or be refused 410. Flows may add a
same-key resend of their last write, a cancel of what they bought and a read of the order.

Everything is drawn from one seeded `random.Random`, so a seed names one exact workload; what
happens at run time (sold out, a lapsed hold, a crashed server) only decides which planned
follow-ups still make sense (nothing to cancel after a refused buy).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from lastseat.domain.holds import ClaimRequest, PoolClaim, SectionClaim
from lastseat.domain.money import Money

BUY_FLOW = "buy"
HOLD_FLOW = "hold"
LOOK_FLOW = "look"
PAY, RELEASE, LAPSE = "pay", "release", "lapse"

# Shares of the flows a session is made of, and of what a hold is followed by.
_FLOWS = ((BUY_FLOW, 0.45), (HOLD_FLOW, 0.40), (LOOK_FLOW, 0.15))
_AFTER_HOLD = ((PAY, 0.65), (RELEASE, 0.28), (LAPSE, 0.07))
SHORT_HOLD_SHARE = 0.35  # holds of 1-3 s, not the server's default
LATE_PAY_SHARE = 0.5  # of the short holds: paid (or released) after they lapsed
LATE_BY_S = (0.2, 0.6)  # how far past its expiry a late payment comes
RESEND_SHARE = 0.2
CANCEL_SHARE = 0.15
READ_ORDER_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Step:
    """One flow of a session (see the module docstring); `claim` is None for a look."""

    flow: str
    claim: ClaimRequest | None = None
    ttl_s: int = 0  # a hold's TTL; 0: the server's default
    then: str = ""  # after a hold: pay | release | lapse
    wait_s: float = 0.0  # think time between a hold and its payment or release
    resend: bool = False  # send the flow's last write again with its key, once answered
    cancel: bool = False  # cancel the order once bought
    read_order: bool = False  # read the order once bought


@dataclass(frozen=True, slots=True)
class Inventory:
    """What a session may ask for: claims of each kind, drawn with the scenario's skew."""

    event_id: str
    section: str
    pool_id: str
    hot_seat: Callable[[random.Random], ClaimRequest]
    group: Callable[[random.Random], ClaimRequest]
    max_units: int


def plan_session(rng: random.Random, inventory: Inventory, flows: int) -> tuple[Step, ...]:
    """`flows` flows of one buyer."""
    return tuple(_step(rng, inventory) for _ in range(flows))


def session_cost(steps: tuple[Step, ...], seat_price: Money, unit_price: Money) -> Money:
    """What every purchase of the session would cost together: the wallet a buyer needs."""
    total = 0
    for step in steps:
        if step.claim is None or not (step.flow == BUY_FLOW or step.then == PAY):
            continue
        price = unit_price if isinstance(step.claim, PoolClaim) else seat_price
        total += price.amount_minor * step.claim.quantity
    return Money(total, seat_price.currency)


def _step(rng: random.Random, inventory: Inventory) -> Step:
    flow = _pick(rng, _FLOWS)
    if flow == LOOK_FLOW:
        return Step(LOOK_FLOW)
    claim = _claim(rng, inventory)
    resend = rng.random() < RESEND_SHARE
    cancel = rng.random() < CANCEL_SHARE
    read_order = rng.random() < READ_ORDER_SHARE
    if flow == BUY_FLOW:
        return Step(BUY_FLOW, claim, resend=resend, cancel=cancel, read_order=read_order)
    then = _pick(rng, _AFTER_HOLD)
    ttl_s, wait_s = 0, 0.0
    if rng.random() < SHORT_HOLD_SHARE:
        ttl_s = rng.randint(1, 3)
        if rng.random() < LATE_PAY_SHARE:
            wait_s = ttl_s + rng.uniform(*LATE_BY_S)
    if then == LAPSE:
        ttl_s, wait_s = rng.randint(1, 3), 0.0  # nobody pays: it lapses on its own
    return Step(HOLD_FLOW, claim, ttl_s, then, round(wait_s, 3), resend, cancel, read_order)


def _claim(rng: random.Random, inventory: Inventory) -> ClaimRequest:
    kind = rng.random()
    if kind < 0.35:
        return inventory.hot_seat(rng)
    if kind < 0.50:
        return inventory.group(rng)
    if kind < 0.80:
        return PoolClaim(inventory.event_id, inventory.pool_id, rng.randint(1, inventory.max_units))
    return SectionClaim(inventory.event_id, inventory.section, rng.randint(1, 4))


def _pick(rng: random.Random, shares: tuple[tuple[str, float], ...]) -> str:
    roll, total = rng.random(), 0.0
    for name, share in shares:
        total += share
        if roll < total:
            return name
    return shares[-1][0]
