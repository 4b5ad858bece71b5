"""Load-generating OS processes for the bench: start together, measure their own CPU.

Every process waits on one barrier, so the load starts at one moment; each one reports when
it started and finished (`time.monotonic_ns`, one clock for every process of a machine) and
the CPU time it used in between (`getrusage`, all its threads). From those the bench tells
how much of the machine the load generator itself took: the CPU share

    sum(process CPU seconds) / (wall seconds x cores)

where wall runs from the first start to the last finish. A share near 1 / cores or above
means the load generator may be what limits the figure. The machine's busy share over the
same window (/proc/stat) says whether the CPU as a whole was the limit.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")

BARRIER_TIMEOUT_S = 120.0
RESULT_TIMEOUT_S = 3_600.0


class LoadError(RuntimeError):
    """A load process failed in a way that is not a measured outcome."""


@dataclass(frozen=True, slots=True)
class Measured(Generic[R]):
    """What one load process did, and when, and at what CPU cost."""

    value: R
    started_ns: int
    finished_ns: int
    cpu_s: float
    ticks_at_start: tuple[int, int] = (0, 0)  # the machine's (busy, total) CPU ticks
    ticks_at_end: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class LoadRun(Generic[R]):
    """Every process's result, the wall time they spanned and their CPU share."""

    values: list[R]
    wall_s: float
    cpu_s: float
    cpu_share: float
    machine_share: float | None = None  # every core's busy share over the wall time


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(work: Callable[[J], Callable[[], R]], jobs: Sequence[J]) -> LoadRun[R]:
    """In one spawned process per job: `go = work(job)` (set-up: connect, prepare), then all
    wait on one barrier, then `go()` runs the measured load.

    `work` must be a module-level function (spawned processes import it by name); what `go`
    returns must pickle.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(jobs))
    outbox: Any = ctx.Queue()
    procs = [
        ctx.Process(target=_entry, args=(work, job, barrier, outbox), daemon=True) for job in jobs
    ]
    for proc in procs:
        proc.start()
    measured: list[Measured[R]] = []
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    try:
        while len(measured) < len(jobs):
            try:
                kind, payload = outbox.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                    raise LoadError("a load process died without reporting") from None
                continue
            if kind == "error":
                raise LoadError(f"a load process failed:\n{payload}")
            measured.append(payload)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return summarize(measured)


def summarize(measured: Sequence[Measured[R]]) -> LoadRun[R]:
    """The wall time from the first start to the last finish, and the CPU share over it."""
    wall_s = max(
        1e-9, (max(m.finished_ns for m in measured) - min(m.started_ns for m in measured)) / 1e9
    )
    cpu_s = sum(m.cpu_s for m in measured)
    first = min(measured, key=lambda m: m.started_ns).ticks_at_start
    last = max(measured, key=lambda m: m.finished_ns).ticks_at_end
    spent = last[1] - first[1]
    machine = (last[0] - first[0]) / spent if spent > 0 else None
    return LoadRun([m.value for m in measured], wall_s, cpu_s, cpu_s / (wall_s * cores()), machine)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU clock ticks of every core since boot, from /proc/stat ((0, 0) without
    it). Busy counts every process on the machine, other users' work too."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is counted in user already
    return total - idle, total


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _entry(work: Callable[[Any], Any], job: Any, barrier: Any, outbox: Any) -> None:
    try:
        go = work(job)
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
        started, cpu, ticks = time.monotonic_ns(), cpu_seconds(), machine_ticks()
        value = go()
        finished, used = time.monotonic_ns(), cpu_seconds() - cpu
        outbox.put(("result", Measured(value, started, finished, used, ticks, machine_ticks())))
    except BaseException:
        outbox.put(("error", traceback.format_exc()))
