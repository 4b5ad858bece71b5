"""The same-run ratios `lastseat bench` reports, each with its target from issue 9.

| ratio                                                   | rows it applies to      | target  |
| ------------------------------------------------------- | ----------------------- | ------- |
| direct ÷ hot-row ceiling at the bench's connections     | ga, one sale per tx     | >= 0.6  |
| HTTP x2 ÷ direct                                        | every scenario, same    | >= 0.8  |
| direct ÷ hot-row ceiling at the bench's connections     | ga, `batched`           | >= 3    |
| HTTP x2 ÷ HTTP ceiling x2                               | every scenario, batched | >= 0.5  |
| best HTTP x2 ÷ SKIP LOCKED ceiling                      | rush, best strategy     | >= 0.7  |
| peak RSS per server (MB)                                | every HTTP row          | < 150   |
| best HTTP purchases/s (absolute check)                  | ga                      | >= 1000 |
| direct ÷ SQLite raw conditional-update loop             | SQLite, every row       | (none)  |

A ratio whose rows were not measured (a strategy or server count left out) is not reported.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lastseat.lab.bench_rows import StrategyRow
from lastseat.lab.ceilings import Ceiling

BATCHED = "batched"


@dataclass(frozen=True, slots=True)
class Ratio:
    """One ratio: what over what, its value, its target and whether it is met."""

    name: str
    scenario: str
    strategy: str
    value: float
    target: str  # e.g. ">= 0.6"; "" for none
    met: bool | None  # None: no target

    @property
    def verdict(self) -> str:
        """met, not met, or - without a target."""
        return "-" if self.met is None else ("met" if self.met else "not met")


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def ratio(name: str, scenario: str, strategy: str, value: float, target: str) -> Ratio:
    """A ratio checked against `target` ("" for none; else "<op> <number>")."""
    if not target:
        return Ratio(name, scenario, strategy, value, "", None)
    op, number = target.split()
    return Ratio(name, scenario, strategy, value, target, _COMPARE[op](value, float(number)))


def postgres_ratios(
    ceilings: Sequence[Ceiling], rows: Sequence[StrategyRow], concurrency: int
) -> list[Ratio]:
    """Every ratio of the table above that this run measured."""
    found: list[Ratio] = []
    hot = _ceiling(ceilings, "hot-row", connections=concurrency)
    skip = _ceiling(ceilings, "skip-locked")
    http2 = _ceiling(ceilings, "http", servers=2)
    for row in rows:
        if row.mode != "direct":
            continue
        x2 = _row(rows, row.scenario, row.strategy, "http x2")
        batched = row.strategy == BATCHED
        if hot is not None and row.scenario == "ga" and hot.per_s:
            target = ">= 3" if batched else ">= 0.6"
            found.append(
                ratio(
                    f"direct ÷ hot-row ceiling ({hot.connections} conns)",
                    row.scenario,
                    row.strategy,
                    row.purchases_per_s / hot.per_s,
                    target,
                )
            )
        if x2 is not None and not batched and row.purchases_per_s:
            value = x2.purchases_per_s / row.purchases_per_s
            found.append(ratio("HTTP x2 ÷ direct", row.scenario, row.strategy, value, ">= 0.8"))
        if x2 is not None and batched and http2 is not None and http2.per_s:
            value = x2.purchases_per_s / http2.per_s
            found.append(
                ratio("HTTP x2 ÷ HTTP ceiling x2", row.scenario, row.strategy, value, ">= 0.5")
            )
    found.extend(_rush_best(rows, skip))
    found.extend(_absolute(rows))
    return found


def sqlite_ratios(ceilings: Sequence[Ceiling], rows: Sequence[StrategyRow]) -> list[Ratio]:
    """Each SQLite row against the single-process raw conditional-update loop."""
    raw = _ceiling(ceilings, "sqlite-hot-row")
    if raw is None or not raw.per_s:
        return []
    return [
        ratio("direct ÷ SQLite raw loop", r.scenario, r.strategy, r.purchases_per_s / raw.per_s, "")
        for r in rows
    ]


def _rush_best(rows: Sequence[StrategyRow], skip: Ceiling | None) -> list[Ratio]:
    candidates = [r for r in rows if r.scenario == "rush" and r.mode == "http x2"]
    if skip is None or not skip.per_s or not candidates:
        return []
    best = max(candidates, key=lambda r: r.purchases_per_s)
    value = best.purchases_per_s / skip.per_s
    return [ratio("best HTTP x2 ÷ SKIP LOCKED ceiling", "rush", best.strategy, value, ">= 0.7")]


def _absolute(rows: Sequence[StrategyRow]) -> list[Ratio]:
    found: list[Ratio] = []
    served = [r for r in rows if r.servers]
    if served:
        biggest = max(served, key=lambda r: r.peak_rss_mb)
        found.append(
            ratio(
                "peak RSS per server, MB (largest)",
                biggest.scenario,
                biggest.strategy,
                biggest.peak_rss_mb,
                "< 150",
            )
        )
    ga = [r for r in served if r.scenario == "ga"]
    if ga:
        best = max(ga, key=lambda r: r.purchases_per_s)
        found.append(
            ratio(
                "best HTTP purchases/s (absolute)",
                "ga",
                best.strategy,
                best.purchases_per_s,
                ">= 1000",
            )
        )
    return found


def _ceiling(
    ceilings: Sequence[Ceiling], name: str, *, connections: int = 0, servers: int = 0
) -> Ceiling | None:
    for ceiling in ceilings:
        if ceiling.name != name:
            continue
        if connections and ceiling.connections != connections:
            continue
        if servers and ceiling.servers != servers:
            continue
        return ceiling
    return None


def _row(
    rows: Sequence[StrategyRow], scenario: str, strategy: str, mode: str
) -> StrategyRow | None:
    return next(
        (r for r in rows if (r.scenario, r.strategy, r.mode) == (scenario, strategy, mode)), None
    )
