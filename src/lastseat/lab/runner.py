"""Run one race per strategy: fresh database, worker processes, merged history, checker.

Every strategy gets its own new database with the same event, the same wallets and the same
buyer plan (same seed), so the rows of the comparison table differ only by strategy.
"""

from __future__ import annotations

import multiprocessing
import queue
import statistics as stats
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lastseat.bootstrap import LockServices, build, open_store
from lastseat.lab.checker import KINDS, ProviderLedger, Verdict, check
from lastseat.lab.checker.mixed import MIXED_KINDS
from lastseat.lab.history import (
    BUY_ACTION,
    RESEND_ACTION,
    Operation,
    read_history,
    write_history,
)
from lastseat.lab.lock_servers import lock_services_for
from lastseat.lab.nemesis import ServerFaults, nemesis
from lastseat.lab.payments import (
    PaymentFaults,
    ProviderHandle,
    SettleReport,
    external_provider,
    outage_window,
    provider_ledger,
    settle,
)
from lastseat.lab.scenarios import Scenario
from lastseat.lab.servers import ServerFleet, server_fleet, strategy_statistics
from lastseat.lab.worker import WorkerJob, WorkerResult, run_worker
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics

REJECTIONS = frozenset(
    {
        "unavailable",
        "insufficient_funds",
        "conflict",
        "not_found",
        "payment_declined",
        "hold_expired",
    }
)
RESULT_TIMEOUT_S = 3_600.0
# With server faults on, a killed server's Idempotency-Keys are taken over after this lease
# (live requests renew theirs), so a race does not wait out the default 30 s per lost key.
LAB_FAULT_LEASE_MS = 2_000


class LabError(RuntimeError):
    """A worker process failed in a way that is not a recorded buyer outcome."""


@dataclass(frozen=True, slots=True)
class RaceConfig:
    """How to run a race; the same for every strategy of one run."""

    scenario: Scenario
    processes: int = 4
    threads: int = 8
    payment_delay_ms: float = 2.0
    seed: int = 1
    synchronous: str = "NORMAL"
    servers: int = 0  # > 0: buyers go through that many `lastseat serve` processes over HTTP
    payments: str = "wallet"  # or "external": a provider process takes the money (needs servers)
    faults: PaymentFaults = field(default_factory=PaymentFaults)
    server_faults: ServerFaults = field(default_factory=ServerFaults)  # needs servers


@dataclass(frozen=True, slots=True)
class RaceResult:
    """One row of the comparison table."""

    strategy: str
    scenario: str
    buyers: int
    processes: int
    attempts: int
    ok: int
    rejected: int
    errors: int
    tickets_sold: int
    oversold: int
    double_charges: int
    retries: int
    conflicts: int
    lock_waits: int
    lock_wait_ms: float
    lock_held_ms: float
    elapsed_s: float
    purchases_per_s: float
    p50_ms: float
    p99_ms: float
    verdict_ok: bool
    violations: dict[str, int] = field(default_factory=dict)
    db_path: str = ""
    history_path: str = ""
    server_peak_rss_mb: tuple[float, ...] = ()
    payments: PaymentsSummary | None = None
    operations: dict[str, int] = field(default_factory=dict)  # completed requests by action
    faults: dict[str, float] = field(default_factory=dict)  # server faults injected, by kind
    rules: dict[str, int] = field(default_factory=dict)  # every checker rule: its findings
    batches: int = 0  # `batched`: transactions its claims were coalesced into
    mean_batch: float = 0.0
    max_batch: int = 0


@dataclass(frozen=True, slots=True)
class PaymentsSummary:
    """What happened to the money of a race paid through the external provider."""

    faults: dict[str, int]  # faults the provider injected, by kind
    captures: int
    refunds: int
    declined: int
    pending_answers: int  # purchases first answered 202 (outcome unknown)
    unknown_outcomes: int  # purchases answered 202 or not at all
    unknown_resolved: int  # ... whose order is now final (the reconciler settled it)
    resends: int
    replays: int  # resends answered with Idempotent-Replayed: true
    reconciled: int  # payments the reconciler drove after the race
    unsettled_left: int


def prepare(config: RaceConfig, strategy: str, db: str) -> list[Any]:
    """Create the race database: event and funded wallets. Returns the buyer plans."""
    store = open_store(db, safety_nets=strategy != "naive", synchronous=config.synchronous)
    try:
        services = build(store, "atomic")
        services.catalog.create_event(config.scenario.event())
        plans = config.scenario.plan(config.seed)
        services.wallets.fund_wallets({p.buyer_id: p.wallet for p in plans})
        return plans
    finally:
        store.close()


def run_race(
    config: RaceConfig,
    strategy: str,
    db_path: Path | str,
    history_path: Path,
    on_progress: Callable[[int], None] = lambda done: None,
) -> RaceResult:
    """Race every buyer of the scenario against one strategy and check the outcome.

    `db_path` is a SQLite path or a PostgreSQL DSN of a new, empty database.
    """
    plans = prepare(config, strategy, str(db_path))
    done = [0]

    def progress(count: int) -> None:
        done[0] = count
        on_progress(count)

    race = _Race(config, strategy, str(db_path), history_path, plans, progress)
    settled: SettleReport | None = None
    ledger: ProviderLedger | None = None
    with lock_services_for(strategy) as locks, _provider(config) as provider:
        if config.servers:
            with server_fleet(
                config.servers,
                str(db_path),
                strategy,
                locks=locks,
                payment_delay_ms=config.payment_delay_ms,
                payments=provider.settings() if provider else None,
                hold_ttl_s=config.faults.hold_ttl_s,
                idempotency_lease_ms=LAB_FAULT_LEASE_MS if config.server_faults.any else 0,
            ) as fleet:
                share_done = lambda: done[0] / max(1, len(plans))  # noqa: E731
                with (
                    outage_window(provider, config.faults, share_done),
                    nemesis(fleet, config.server_faults, share_done, config.seed) as injected,
                ):
                    history, results = _race_processes(race, fleet, locks)
                faults = injected.as_dict()
                server_rss_mb = fleet.peak_rss_mb()
                # The strategy ran inside the servers: their counters replace the buyers' zeros.
                results = [WorkerResult(strategy_statistics(fleet.urls), [], 0, 0), *results]
        else:
            history, results = _race_processes(race, None, locks)
            server_rss_mb, faults = (), {}
        if provider is not None:
            settled = settle(str(db_path), provider)
            ledger = provider_ledger(provider)
    store = open_store(str(db_path), create=False)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    verdict = check(history, snapshot, provider=ledger)
    summary = _summarize(config, strategy, history, results, verdict, db_path, history_path)
    payments = None
    if settled is not None and ledger is not None:
        payments = _payments_summary(history, snapshot, ledger, settled)
    return replace(summary, server_peak_rss_mb=server_rss_mb, payments=payments, faults=faults)


@contextmanager
def _provider(config: RaceConfig) -> Iterator[ProviderHandle | None]:
    if config.payments != "external":
        yield None
        return
    with external_provider(config.faults, config.seed) as handle:
        yield handle


def _payments_summary(
    history: list[Operation], snapshot: Snapshot, ledger: ProviderLedger, settled: SettleReport
) -> PaymentsSummary:
    final = {o.order_id for o in snapshot.orders if o.status != "pending_payment"}
    completions = [op for op in history if op.type != "invoke"]
    # Unknown to the buyer when answered: a 202 (payment not settled yet), or no answer.
    unknown = [
        op
        for op in completions
        if op.action == BUY_ACTION and (op.type == "info" or op.status == 202)
    ]
    resends = [op for op in completions if op.action == RESEND_ACTION]
    return PaymentsSummary(
        faults={k: v for k, v in settled.fault_counts.items() if v and k != "requests"},
        captures=sum(1 for p in ledger.payments if p.status == "captured"),
        refunds=len(ledger.refunds),
        declined=sum(1 for p in ledger.payments if p.status == "declined"),
        pending_answers=sum(1 for op in completions if op.status == 202),
        unknown_outcomes=len(unknown),
        unknown_resolved=sum(1 for op in unknown if op.order_id in final),
        resends=len(resends),
        replays=sum(1 for op in resends if op.replayed),
        reconciled=settled.reconciled.examined,
        unsettled_left=settled.unsettled_left,
    )


@dataclass(frozen=True, slots=True)
class _Race:
    config: RaceConfig
    strategy: str
    db: str
    history_path: Path
    plans: list[Any]
    on_progress: Callable[[int], None]


def _race_processes(
    race: _Race, fleet: ServerFleet | None, locks: LockServices
) -> tuple[list[Operation], list[WorkerResult]]:
    config, strategy, db, history_path, plans = (
        race.config,
        race.strategy,
        race.db,
        race.history_path,
        race.plans,
    )
    parts = [history_path.with_suffix(f".part{i}.jsonl") for i in range(config.processes)]
    urls = fleet.urls if fleet else ()
    secret = fleet.token_secret if fleet else b""
    resend_rate = config.faults.resend_rate if fleet else 0.0
    cancel_rate = config.faults.cancel_rate if fleet else 0.0
    # Direct buyers pause in-process; over HTTP the servers pause (LASTSEAT_PAYMENT_DELAY_MS).
    delay_ms = 0.0 if fleet else config.payment_delay_ms
    jobs = [
        WorkerJob(
            i,
            db,
            strategy,
            plans[i :: config.processes],
            config.threads,
            delay_ms,
            str(parts[i]),
            config.synchronous,
            urls,
            secret,
            locks,
            resend_rate,
            cancel_rate,
            config.seed,
        )
        for i in range(config.processes)
    ]
    results = _run_processes(jobs, race.on_progress)
    return _merge(parts, history_path), results


def _run_processes(jobs: list[WorkerJob], on_progress: Callable[[int], None]) -> list[WorkerResult]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(jobs))
    progress = ctx.Value("q", 0)
    outbox: Any = ctx.Queue()
    procs = [
        ctx.Process(target=_entry, args=(job, barrier, progress, outbox), daemon=True)
        for job in jobs
    ]
    for proc in procs:
        proc.start()
    results: list[WorkerResult] = []
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    try:
        while len(results) < len(jobs):
            on_progress(int(progress.value))
            try:
                kind, payload = outbox.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                    raise LabError("a race worker died without reporting") from None
                continue
            if kind == "error":
                raise LabError(f"a race worker failed:\n{payload}")
            results.append(payload)
        on_progress(int(progress.value))
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return results


def _entry(job: WorkerJob, barrier: Any, progress: Any, outbox: Any) -> None:
    try:
        outbox.put(("result", run_worker(job, barrier, progress)))
    except BaseException:
        outbox.put(("error", traceback.format_exc()))


def _merge(parts: list[Path], history_path: Path) -> list[Operation]:
    operations: list[Operation] = []
    for part in parts:
        operations.extend(read_history(part))
        part.unlink()
    operations.sort(key=lambda op: (op.time_ns, op.process))
    write_history(history_path, operations)
    return operations


def _summarize(
    config: RaceConfig,
    strategy: str,
    history: list[Operation],
    results: list[WorkerResult],
    verdict: Verdict,
    db_path: Path | str,
    history_path: Path,
) -> RaceResult:
    outcomes = Counter(op.type for op in history)
    failures = Counter(op.error for op in history if op.type == "fail")
    rejected = sum(n for error, n in failures.items() if error in REJECTIONS)
    counters = StrategyStatistics.merged([r.statistics for r in results])
    timed = [r for r in results if r.finished_ns]
    elapsed_s = max(
        1e-9, (max(r.finished_ns for r in timed) - min(r.started_ns for r in timed)) / 1e9
    )
    latencies = sorted(n for r in results for n in r.latencies_ns)
    found = Counter(v.kind for v in verdict.violations)
    return RaceResult(
        strategy=strategy,
        scenario=config.scenario.name,
        buyers=config.scenario.buyers,
        processes=config.processes,
        attempts=outcomes["invoke"],
        ok=outcomes["ok"],
        rejected=rejected,
        errors=outcomes["fail"] - rejected + outcomes["info"],
        tickets_sold=verdict.tickets_sold,
        oversold=verdict.oversold,
        double_charges=verdict.double_charges,
        retries=counters.retries,
        conflicts=counters.conflicts,
        lock_waits=counters.lock_waits,
        lock_wait_ms=counters.lock_wait_ns / 1e6,
        lock_held_ms=counters.lock_held_ns / 1e6,
        elapsed_s=elapsed_s,
        purchases_per_s=outcomes["ok"] / elapsed_s,
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        verdict_ok=verdict.ok,
        violations=dict(Counter(v.kind for v in verdict.violations)),
        operations=dict(Counter(op.action for op in history if op.type != "invoke")),
        rules={kind: found.get(kind, 0) for kind in (*KINDS, *MIXED_KINDS)},
        db_path=str(db_path),
        history_path=str(history_path),
        batches=counters.batches,
        mean_batch=counters.mean_batch,
        max_batch=counters.max_batch,
    )


def _percentile(sorted_ns: list[int], pct: int) -> float:
    if not sorted_ns:
        return 0.0
    if len(sorted_ns) == 1:
        return sorted_ns[0] / 1e6
    cuts = stats.quantiles(sorted_ns, n=100, method="inclusive")
    return cuts[pct - 1] / 1e6
