"""The admission gate with real threads: claims in flight and waiting are bounded per hot
resource, a full queue refuses at once without touching the store, places pass on in order."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lastseat.api.settings import Settings
from lastseat.bootstrap import build, open_store
from lastseat.concurrency.admission import (
    AdmissionLimits,
    ClaimGate,
    GatedStrategy,
    GateStatistics,
    gated,
    hot_resource,
)
from lastseat.concurrency.registry import make_strategy
from lastseat.domain.errors import OverloadedError, StoreBusyError, ValidationError
from lastseat.domain.holds import PoolClaim, SeatClaim, SectionClaim
from lastseat.service.ports import InventoryTx, Stage, Store
from lastseat.service.statistics import StrategyStatistics

T = TypeVar("T")
WAIT_S = 30.0
NOW = datetime(2026, 12, 2, tzinfo=UTC)
POOL = PoolClaim("ev", "ev/standing", 1)


class FakeStrategy:
    """Claims that stay inside until the test lets them out, in the order they entered."""

    name = "atomic"
    guarded = True

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.inside = threading.Semaphore(0)
        self.gates: dict[str, threading.Event] = {}
        self._mutex = threading.Lock()
        self._stats = StrategyStatistics()

    def claim(
        self,
        store: Store,
        claim: Any,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        with self._mutex:
            self.entered.append(hold_id)
            out = self.gates.setdefault(hold_id, threading.Event())
        self.inside.release()
        assert out.wait(WAIT_S), f"{hold_id} was never let out"
        if hold_id.startswith("fail"):
            raise RuntimeError("the claim failed")
        return finish(None)  # type: ignore[arg-type]

    def claim_section(self, store: Store, claim: Any, *args: Any) -> Any:
        return self.claim(store, claim, *args)

    def statistics(self) -> StrategyStatistics:
        return self._stats

    def let_out(self, hold_id: str) -> None:
        with self._mutex:
            self.gates.setdefault(hold_id, threading.Event()).set()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(16) as executor:
        yield executor


def start(
    executor: ThreadPoolExecutor, strategy: GatedStrategy, hold_id: str, claim: Any = POOL
) -> Future[str]:
    return executor.submit(
        strategy.claim, None, claim, Stage.SOLD, hold_id, NOW, lambda tx: hold_id
    )  # type: ignore[arg-type]


def until(condition: Callable[[], bool]) -> None:
    """Poll a condition (a signal, not a guess at timing); fail if it never holds."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def gate_of(strategy: GatedStrategy) -> Callable[[], GateStatistics]:
    return strategy.gate.statistics


def test_a_full_queue_refuses_at_once_and_the_refused_claim_never_runs(
    pool: ThreadPoolExecutor,
) -> None:
    fake = FakeStrategy()
    gate = GatedStrategy(fake, ClaimGate(AdmissionLimits(in_flight=2, queue=1)))
    running = [start(pool, gate, "a"), start(pool, gate, "b")]
    for _ in running:
        assert fake.inside.acquire(timeout=WAIT_S)
    waiting = start(pool, gate, "c")
    until(lambda: gate_of(gate)().waiting == 1)

    with pytest.raises(OverloadedError) as refused:
        gate.claim(None, POOL, Stage.SOLD, "d", NOW, lambda tx: "d")  # type: ignore[arg-type]

    assert isinstance(refused.value, StoreBusyError)  # the API's 503 overloaded row
    assert gate.statistics().overloaded == 1
    assert fake.entered == ["a", "b"]
    assert gate_of(gate)() == GateStatistics(admitted=2, queued=1, refused=1, running=2, waiting=1)
    for hold_id in "abc":
        fake.let_out(hold_id)
    assert [f.result(WAIT_S) for f in [*running, waiting]] == ["a", "b", "c"]
    assert fake.entered == ["a", "b", "c"]
    assert gate_of(gate)() == GateStatistics(admitted=2, queued=1, refused=1, running=0, waiting=0)


def test_a_finished_claim_hands_its_place_to_the_longest_waiter(
    pool: ThreadPoolExecutor,
) -> None:
    fake = FakeStrategy()
    gate = GatedStrategy(fake, ClaimGate(AdmissionLimits(in_flight=1, queue=3)))
    first = start(pool, gate, "first")
    assert fake.inside.acquire(timeout=WAIT_S)
    queued = []
    for n, hold_id in enumerate(["w1", "w2", "w3"], start=1):
        queued.append(start(pool, gate, hold_id))
        until(lambda n=n: gate_of(gate)().waiting == n)  # type: ignore[misc]

    fake.let_out("first")
    assert first.result(WAIT_S) == "first"
    for hold_id, future in zip(["w1", "w2", "w3"], queued, strict=True):
        assert fake.inside.acquire(timeout=WAIT_S)
        assert fake.entered[-1] == hold_id  # the longest waiter, and only it, got in
        assert gate_of(gate)().running == 1
        fake.let_out(hold_id)
        assert future.result(WAIT_S) == hold_id


def test_hot_resources_are_bounded_apart(pool: ThreadPoolExecutor) -> None:
    fake = FakeStrategy()
    gate = GatedStrategy(fake, ClaimGate(AdmissionLimits(in_flight=1, queue=0)))
    busy = start(pool, gate, "p1")
    assert fake.inside.acquire(timeout=WAIT_S)
    other_pool = PoolClaim("ev", "ev/balcony", 1)
    elsewhere = start(pool, gate, "p2", other_pool)
    assert fake.inside.acquire(timeout=WAIT_S)  # another pool's claim got in beside it

    with pytest.raises(OverloadedError):  # queue 0: the same pool is refused at once
        gate.claim(None, POOL, Stage.SOLD, "p3", NOW, lambda tx: "p3")  # type: ignore[arg-type]
    fake.let_out("p1")
    fake.let_out("p2")
    assert (busy.result(WAIT_S), elsewhere.result(WAIT_S)) == ("p1", "p2")


def test_a_failed_claim_gives_its_place_back(pool: ThreadPoolExecutor) -> None:
    fake = FakeStrategy()
    gate = GatedStrategy(fake, ClaimGate(AdmissionLimits(in_flight=1, queue=1)))
    failing = start(pool, gate, "fail-1")
    assert fake.inside.acquire(timeout=WAIT_S)
    after = start(pool, gate, "next")
    until(lambda: gate_of(gate)().waiting == 1)
    fake.let_out("fail-1")
    with pytest.raises(RuntimeError):
        failing.result(WAIT_S)
    assert fake.inside.acquire(timeout=WAIT_S)
    fake.let_out("next")
    assert after.result(WAIT_S) == "next"
    assert gate_of(gate)().running == 0


def test_best_available_claims_pass_ungated(pool: ThreadPoolExecutor) -> None:
    fake = FakeStrategy()
    gate = GatedStrategy(fake, ClaimGate(AdmissionLimits(in_flight=1, queue=0)))
    section = SectionClaim("ev", "A", 2)
    inside = [
        pool.submit(
            gate.claim_section,
            None,  # type: ignore[arg-type]
            section,
            Stage.SOLD,
            hold_id,
            NOW,
            lambda tx, seats=None: "ok",
        )
        for hold_id in ("s1", "s2")
    ]
    for _ in inside:  # both are inside at once, past a gate of 1 with no queue
        assert fake.inside.acquire(timeout=WAIT_S)
    fake.let_out("s1")
    fake.let_out("s2")
    assert [f.result(WAIT_S) for f in inside] == ["ok", "ok"]
    assert gate_of(gate)().admitted == 0


def test_an_interrupted_waiter_leaves_the_queue() -> None:
    gate = ClaimGate(AdmissionLimits(in_flight=1, queue=1))
    gate.enter("k")

    class Interrupted(BaseException):
        pass

    @contextmanager
    def interrupting_waits() -> Iterator[None]:
        original = threading.Event.wait

        def wait(self: threading.Event, timeout: float | None = None) -> bool:
            raise Interrupted

        threading.Event.wait = wait  # type: ignore[method-assign]
        try:
            yield
        finally:
            threading.Event.wait = original  # type: ignore[method-assign]

    with interrupting_waits(), pytest.raises(Interrupted):
        gate.enter("k")
    assert gate.statistics().waiting == 0
    gate.leave("k")
    assert gate.statistics().running == 0


def test_hot_resource_is_the_row_a_claim_waits_on_first() -> None:
    assert hot_resource(POOL) == "pool:ev/standing"
    group = SeatClaim("ev", ("ev/A/0001/0003", "ev/A/0001/0002"))
    assert hot_resource(group) == "seat:ev/A/0001/0002"  # lock order: ascending


def test_the_gate_is_off_at_zero_and_for_naive() -> None:
    atomic = make_strategy("atomic")
    assert gated(atomic, AdmissionLimits(in_flight=0)) is atomic
    naive = make_strategy("naive", allow_unsafe=True)
    assert gated(naive, AdmissionLimits()) is naive
    wrapped = gated(atomic, AdmissionLimits())
    assert isinstance(wrapped, GatedStrategy)
    assert (wrapped.name, wrapped.guarded, wrapped.statistics()) == (
        "atomic",
        True,
        atomic.statistics(),
    )


@pytest.mark.parametrize(
    "limits", [AdmissionLimits(-1, 1), AdmissionLimits(1, -1), AdmissionLimits(0, 1)]
)
def test_negative_limits_are_refused(limits: AdmissionLimits) -> None:
    with pytest.raises(ValidationError):
        ClaimGate(limits)


def test_server_settings_carry_the_limits_through_the_environment() -> None:
    secrets = {"LASTSEAT_ADMIN_KEY": "k" * 16, "LASTSEAT_TOKEN_SECRET": "s" * 32}
    assert Settings.from_env(secrets).admission == AdmissionLimits()
    chosen = {**secrets, "LASTSEAT_CLAIMS_IN_FLIGHT": "0", "LASTSEAT_CLAIM_QUEUE": "5"}
    settings = Settings.from_env(chosen)
    assert settings.admission == AdmissionLimits(in_flight=0, queue=5)
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LASTSEAT_CLAIMS_IN_FLIGHT", "-1"),
        ("LASTSEAT_CLAIMS_IN_FLIGHT", "many"),
        ("LASTSEAT_CLAIMS_IN_FLIGHT", "1001"),
        ("LASTSEAT_CLAIM_QUEUE", "100001"),
    ],
)
def test_unusable_limits_are_refused_by_the_server_settings(name: str, value: str) -> None:
    secrets = {"LASTSEAT_ADMIN_KEY": "k" * 16, "LASTSEAT_TOKEN_SECRET": "s" * 32}
    with pytest.raises(ValidationError, match=name):
        Settings.from_env({**secrets, name: value})


@pytest.mark.parametrize("option", ["--claims-in-flight=-1", "--claim-queue=x"])
def test_serve_refuses_a_bad_limit_with_exit_code_2(option: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lastseat", "serve", "--dev", option],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert option.split("=", maxsplit=1)[0] in done.stderr


def test_services_sell_through_the_gate_unless_it_is_off(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "gate.db"))
    try:
        default = build(store, "row-lock").booking.strategy
        assert isinstance(default, GatedStrategy)
        assert default.gate.limits == AdmissionLimits()
        off = build(store, "row-lock", admission=AdmissionLimits(in_flight=0)).booking.strategy
        assert not isinstance(off, GatedStrategy)
    finally:
        store.close()


def test_limits_from_the_environment() -> None:
    assert AdmissionLimits.from_env({}) == AdmissionLimits()
    chosen = {"LASTSEAT_CLAIMS_IN_FLIGHT": " 3 ", "LASTSEAT_CLAIM_QUEUE": "0"}
    assert AdmissionLimits.from_env(chosen) == AdmissionLimits(in_flight=3, queue=0)
