"""The mixed scenario's plan: one seed, one exact workload, with every kind of flow in it."""

from __future__ import annotations

from collections import Counter

from lastseat.domain.holds import PoolClaim, SeatClaim, SectionClaim
from lastseat.lab.scenarios import SEAT_PRICE, UNIT_PRICE, default_scenario
from lastseat.lab.sessions import BUY_FLOW, HOLD_FLOW, LAPSE, LOOK_FLOW, PAY, RELEASE, session_cost

MIXED = default_scenario("mixed")


def test_a_seed_names_one_plan() -> None:
    assert MIXED.plan(seed=7) == MIXED.plan(seed=7)
    assert MIXED.plan(seed=7) != MIXED.plan(seed=8)


def test_the_default_plan_has_every_flow_and_every_kind_of_claim() -> None:
    steps = [step for plan in MIXED.plan(seed=1) for step in plan.steps]
    flows = Counter(step.then if step.flow == HOLD_FLOW else step.flow for step in steps)
    assert all(flows[kind] for kind in (BUY_FLOW, LOOK_FLOW, PAY, RELEASE, LAPSE)), flows
    claims = Counter(type(step.claim).__name__ for step in steps if step.claim is not None)
    assert all(claims[c.__name__] for c in (SeatClaim, PoolClaim, SectionClaim)), claims
    assert any(len(s.claim.seat_ids) > 1 for s in steps if isinstance(s.claim, SeatClaim))
    late = [s for s in steps if s.flow == HOLD_FLOW and s.ttl_s and s.wait_s > s.ttl_s]
    assert late and all(1 <= s.ttl_s <= 3 for s in late)
    assert any(s.cancel for s in steps) and any(s.resend for s in steps)
    assert any(s.read_order for s in steps)


def test_a_wallet_pays_for_the_whole_session_or_is_one_cent_short() -> None:
    plans = MIXED.plan(seed=1)
    short = 0
    for plan in plans:
        cost = session_cost(plan.steps, SEAT_PRICE, UNIT_PRICE).amount_minor
        assert plan.wallet.amount_minor in (cost, cost - 1) or cost == 0
        short += plan.wallet.amount_minor == cost - 1
    assert 0 < short < len(plans) // 5  # about the poor-buyer fraction (5 %)
