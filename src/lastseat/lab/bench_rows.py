"""One measured strategy row of `lastseat bench`: direct, or over HTTP through N servers.

- direct: the race lab's own run (lab.runner, in-process buyers in 4 worker processes), so
  each purchase is the service's transaction driven straight through the driver;
- HTTP xN: N `lastseat serve` processes over the same kind of fresh database, the buyers are
  the bench's lean asyncio load generator (lab.http_load), and the race lab's checker judges
  the recorded history against the final state, as for every race.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lastseat.bootstrap import open_store
from lastseat.lab.ceilings import percentile_ms
from lastseat.lab.checker import check
from lastseat.lab.cpu import ProcessCpu
from lastseat.lab.history import write_history
from lastseat.lab.http_load import run_purchases
from lastseat.lab.loadprocs import machine_ticks
from lastseat.lab.lock_servers import lock_services_for
from lastseat.lab.runner import REJECTIONS, RaceConfig, prepare, run_race
from lastseat.lab.scenarios import Scenario
from lastseat.lab.servers import server_fleet, strategy_statistics

DIRECT_PROCESSES = 4
_REFUSED = REJECTIONS | {"busy"}  # definite refusals, 503 overloaded among them


@dataclass(frozen=True, slots=True)
class StrategyRow:
    """One strategy in one mode: its rate, latency, contention, memory and checker verdict."""

    scenario: str
    strategy: str
    mode: str  # direct | http x1 | http x2 | ...
    servers: int
    purchases_per_s: float
    p50_ms: float
    p99_ms: float
    attempts: int
    ok: int
    errors: int  # answers that were neither a sale nor a definite refusal
    conflicts: int
    retries: int  # the strategy's own retries (in the servers over HTTP)
    client_retries: int  # requests the load generator sent again with their key (503, 409)
    overloaded: int  # claims the servers refused 503 overloaded (contention control)
    batches: int  # `batched` only: transactions that carried claims, and the claims in them
    batched_claims: int
    max_batch: int
    peak_rss_mb: float  # the largest server's peak RSS (0: direct)
    load_cpu_share: float | None  # the HTTP load generator's CPU share (None: direct)
    verdict_ok: bool
    violations: dict[str, int]
    server_cpu_share: float | None = None  # the app servers' CPU share (None: direct)
    machine_cpu_share: float | None = None  # every core's busy share, whoever used it

    @property
    def mean_batch(self) -> float | None:
        """Claims per batch, or None when the strategy reported no batches."""
        return self.batched_claims / self.batches if self.batches else None


def direct_row(
    scenario: Scenario, strategy: str, db: str, history: Path, concurrency: int, sync: str
) -> StrategyRow:
    """Buyers in 4 worker processes drive the purchase transaction in-process."""
    threads = max(1, concurrency // DIRECT_PROCESSES)
    config = RaceConfig(scenario, DIRECT_PROCESSES, threads, 0.0, 1, sync, 0)
    window = _Window(scenario.buyers)
    result = run_race(config, strategy, db, history, on_progress=window)
    return StrategyRow(
        scenario=result.scenario,
        strategy=strategy,
        mode="direct",
        servers=0,
        purchases_per_s=result.purchases_per_s,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        attempts=result.attempts,
        ok=result.ok,
        errors=result.errors,
        conflicts=result.conflicts,
        retries=result.retries,
        client_retries=0,
        overloaded=0,
        batches=result.batches,
        batched_claims=round(result.mean_batch * result.batches),
        max_batch=result.max_batch,
        peak_rss_mb=0.0,
        load_cpu_share=None,
        verdict_ok=result.verdict_ok,
        violations=dict(result.violations),
        machine_cpu_share=window.machine_share(),
    )


def http_row(
    scenario: Scenario, strategy: str, db: str, history: Path, concurrency: int, servers: int
) -> StrategyRow:
    """The same buyers over HTTP through `servers` servers, checked like any race."""
    plans = prepare(RaceConfig(scenario), strategy, db)
    with (
        lock_services_for(strategy) as locks,
        server_fleet(servers, db, strategy, locks=locks) as fleet,
    ):
        server_cpu = ProcessCpu(fleet.pids)
        load = run_purchases(fleet.urls, fleet.token_secret, plans, concurrency)
        server_share = server_cpu.share(load.wall_s)
        counters = strategy_statistics(fleet.urls)
        peak_rss = max(fleet.peak_rss_mb(), default=0.0)
    write_history(history, load.history)
    store = open_store(db, create=False)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    verdict = check(load.history, snapshot)
    outcomes = Counter(op.type for op in load.history)
    refused = sum(1 for op in load.history if op.type == "fail" and op.error in _REFUSED)
    return StrategyRow(
        scenario=scenario.name,
        strategy=strategy,
        mode=f"http x{servers}",
        servers=servers,
        purchases_per_s=outcomes["ok"] / load.wall_s,
        p50_ms=percentile_ms(load.latencies_ns, 50),
        p99_ms=percentile_ms(load.latencies_ns, 99),
        attempts=outcomes["invoke"],
        ok=outcomes["ok"],
        errors=outcomes["fail"] - refused + outcomes["info"],
        conflicts=counters.get("conflicts", 0),
        retries=counters.get("retries", 0),
        client_retries=load.retries,
        overloaded=counters.get("overloaded", 0),
        batches=counters.get("batches", 0),
        batched_claims=counters.get("batched_claims", 0),
        max_batch=counters.get("max_batch", 0),
        peak_rss_mb=peak_rss,
        load_cpu_share=load.load_cpu_share,
        verdict_ok=verdict.ok,
        violations=dict(Counter(v.kind for v in verdict.violations)),
        server_cpu_share=server_share,
        machine_cpu_share=load.machine_cpu_share,
    )


class _Window:
    """The machine's CPU ticks from the first answered buyer to the last (a race's progress
    callback), so the busy share leaves out process start-up and the checker."""

    def __init__(self, buyers: int) -> None:
        self.buyers = buyers
        self.first: tuple[int, int] | None = None
        self.last: tuple[int, int] | None = None

    def __call__(self, done: int) -> None:
        if done and self.first is None:
            self.first = machine_ticks()
        if done >= self.buyers and self.last is None:
            self.last = machine_ticks()

    def machine_share(self) -> float | None:
        """Busy ticks over all ticks in the window (None if it was too short to see)."""
        if self.first is None or self.last is None or self.last[1] <= self.first[1]:
            return None
        return (self.last[0] - self.first[0]) / (self.last[1] - self.first[1])
