"""The CPU share of given processes (the app servers) over a measurement, from /proc.

A share is CPU seconds over wall seconds x cores, so 100 % is every core busy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from lastseat.lab.loadprocs import cores

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # Counted from the state (field 3), utime and stime are fields 14 and 15 of the line.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


class ProcessCpu:
    """CPU seconds of `pids` since this object was made; `share(wall_s)` over a window."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = tuple(pids)
        self._start_s = self._now()

    def share(self, wall_s: float) -> float:
        """Their CPU seconds since start over `wall_s` x cores (they idle outside the window)."""
        return (self._now() - self._start_s) / (max(1e-9, wall_s) * cores())

    def _now(self) -> float:
        return sum(process_cpu_s(pid) for pid in self.pids)
