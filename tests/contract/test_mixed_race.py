"""The mixed scenario, every strategy, both backends: an on-sale's workload in real processes.

Buyers in 2 worker OS processes x 6 threads play seeded sessions against the service layer:
quick buys of hot seats, groups, GA units and best-available seats, holds paid on time or late
(1-3 s holds that lapse first), released or left to lapse, cancels, reads and same-key resends,
some buyers one cent short. Every answer is checked against the final state; the guarded
strategies must come out clean, and `naive` must not, which shows the check can fail.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lastseat.concurrency.registry import GUARDED_NAMES
from lastseat.lab.runner import RaceConfig, RaceResult, run_race
from lastseat.lab.scenarios import Scenario
from lastseat.lab.sessions import HOLD_FLOW, PAY, RELEASE

SCENARIO = Scenario("mixed", 40, seats=30, capacity=30, group_size=4, poor_fraction=0.15, flows=2)
ALWAYS_SENT = {"buy", "hold", "resend", "read-availability"}


def mixed_race(tmp_path: Path, db_url: str, strategy: str, delay_ms: float = 1.0) -> RaceResult:
    config = RaceConfig(SCENARIO, processes=2, threads=6, payment_delay_ms=delay_ms)
    return run_race(config, strategy, db_url, tmp_path / f"{strategy}.jsonl")


def test_the_short_plan_has_every_kind_of_flow() -> None:
    steps = [step for plan in SCENARIO.plan(seed=1) for step in plan.steps]
    flows = Counter(step.then if step.flow == HOLD_FLOW else step.flow for step in steps)
    assert flows[PAY] and flows[RELEASE] and flows["buy"] and flows["look"]
    assert any(step.ttl_s and step.wait_s > step.ttl_s for step in steps), "a late payment"
    assert any(step.cancel for step in steps) and any(step.resend for step in steps)
    assert any(plan.wallet.amount_minor % 100 == 99 for plan in SCENARIO.plan(seed=1))


@pytest.mark.parametrize("strategy", GUARDED_NAMES)
def test_a_mixed_on_sale_keeps_every_invariant_and_every_answer_true(
    tmp_path: Path, db_url: str, strategy: str
) -> None:
    result = mixed_race(tmp_path, db_url, strategy)
    assert set(result.operations) >= ALWAYS_SENT, result.operations
    assert result.ok > 0 and result.tickets_sold > 0
    assert result.verdict_ok, result.violations
    assert not any(result.rules.values())


def test_naive_breaks_a_mixed_on_sale(tmp_path: Path, db_url: str) -> None:
    result = mixed_race(tmp_path, db_url, "naive", delay_ms=20.0)
    assert not result.verdict_ok
    assert sum(result.rules.values()) > 0
