"""Server faults during a race over HTTP: crash-and-restart servers, freeze one for a while.

`--kill-every S`: once a fifth of the buyers are through, and from then on every S seconds, a
server of the fleet, drawn from a seeded random stream, is SIGKILLed (requests in flight lose
their answers; a commit may or may not have happened) and restarted on the same port, as a
supervisor would; the next period starts once it answers /ready again. Starting on progress,
not on a timer, makes every race with kills on see at least one, however slow the machine.
`--pause S`: once a fifth of the buyers are through, one server is SIGSTOPped for S seconds
(its connections stay open and unanswered, its leases run out), then SIGCONTed.

Design note. The faults run in threads of the race's parent process, never inside a buyer, so
a buyer only ever sees what a real client would: no answer, or a late one. The two never
touch one server at once (a paused server is not killed), and both are undone before the
race ends: every server is running and unfrozen when the checker and /metrics read. What was
done is counted (`FaultReport`), so a race says how many faults it actually survived.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lastseat.domain.errors import StoreError
from lastseat.lab.servers import ServerFleet

FIRST_FAULT_AFTER = 0.2  # faults start once this share of the buyers is done


@dataclass(frozen=True, slots=True)
class ServerFaults:
    """What to do to the servers during a race (0: nothing)."""

    kill_every_s: float = 0.0
    pause_s: float = 0.0

    @property
    def any(self) -> bool:
        """True when some fault is asked for."""
        return self.kill_every_s > 0 or self.pause_s > 0


@dataclass(slots=True)
class FaultReport:
    """The faults actually injected."""

    kills: int = 0
    restarts: int = 0
    pauses: int = 0
    paused_s: float = 0.0
    restart_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: float = 1) -> None:
        """Count one more fault of kind `name` (thread-safe)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, float]:
        """The counts, for the race summary."""
        with self._lock:
            return {
                "kills": self.kills,
                "restarts": self.restarts,
                "restart_failures": self.restart_failures,
                "pauses": self.pauses,
                "paused_s": round(self.paused_s, 3),
            }


@contextmanager
def nemesis(
    fleet: ServerFleet, faults: ServerFaults, buyers_done: Callable[[], float], seed: int
) -> Iterator[FaultReport]:
    """Inject `faults` into `fleet` until the block ends; every server runs again after it."""
    report = FaultReport()
    if not faults.any or not fleet.servers:
        yield report
        return
    stop = threading.Event()
    busy = threading.Lock()  # one fault at a time: a paused server is never killed
    threads = []
    if faults.kill_every_s > 0:
        rng = random.Random(seed)
        kill = _Killer(fleet, faults.kill_every_s, rng, buyers_done, stop, busy, report)
        threads.append(threading.Thread(target=kill.run, name="nemesis-kill", daemon=True))
    if faults.pause_s > 0:
        pause = _Pauser(fleet, faults.pause_s, buyers_done, stop, busy, report)
        threads.append(threading.Thread(target=pause.run, name="nemesis-pause", daemon=True))
    for thread in threads:
        thread.start()
    try:
        yield report
    finally:
        stop.set()
        for thread in threads:
            thread.join()


class _Killer:
    def __init__(
        self,
        fleet: ServerFleet,
        every_s: float,
        rng: random.Random,
        buyers_done: Callable[[], float],
        stop: threading.Event,
        busy: threading.Lock,
        report: FaultReport,
    ) -> None:
        self.fleet, self.every_s, self.rng = fleet, every_s, rng
        self.buyers_done = buyers_done
        self.stop, self.busy, self.report = stop, busy, report

    def run(self) -> None:
        if not _wait_for(self.buyers_done, self.stop):
            return
        while True:
            self._kill_one()
            if self.stop.wait(self.every_s):
                return

    def _kill_one(self) -> None:
        server = self.rng.choice(self.fleet.servers)
        with self.busy:
            server.kill()
            self.report.add("kills")
            try:
                server.restart()
            except StoreError:  # counted; the race goes on with one server fewer
                self.report.add("restart_failures")
            else:
                self.report.add("restarts")


def _wait_for(buyers_done: Callable[[], float], stop: threading.Event) -> bool:
    """Wait until a fifth of the buyers are through; False if the race ended first."""
    while buyers_done() < FIRST_FAULT_AFTER:
        if stop.wait(0.05):
            return False
    return True


class _Pauser:
    def __init__(
        self,
        fleet: ServerFleet,
        pause_s: float,
        buyers_done: Callable[[], float],
        stop: threading.Event,
        busy: threading.Lock,
        report: FaultReport,
    ) -> None:
        self.fleet, self.pause_s, self.buyers_done = fleet, pause_s, buyers_done
        self.stop, self.busy, self.report = stop, busy, report

    def run(self) -> None:
        if not _wait_for(self.buyers_done, self.stop):
            return
        server = self.fleet.servers[-1]
        with self.busy:
            started = time.monotonic()
            server.pause()
            self.report.add("pauses")
            self.stop.wait(self.pause_s)  # cut short only when the race is over
            server.resume()
            self.report.add("paused_s", time.monotonic() - started)
