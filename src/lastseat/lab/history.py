"""The recorded history of a race: one JSON object per line, invoke then ok / fail / info.

An `invoke` is written before a buyer's attempt starts; exactly one completion with the same
`op_id` follows: `ok` (acknowledged success, with order and ticket codes), `fail` (acknowledged
failure, with an error type) or `info` (outcome unknown to the client, e.g. a crash or timeout).
Times are `time.monotonic_ns()`, which on Linux is one clock for every process of a machine.

An attempt over HTTP also records its Idempotency-Key, the answer's HTTP `status`, the
`digest` of its body (`answer_digest`) and whether it was `replayed` (Idempotent-Replayed:
true). A 202 (payment outcome not known yet) is an `info` with `status=202` and the order it
named. Actions: `buy`, `resend` (the same request again with the same key, by the lab's
duplicate-request feature) and `refund`. Every field after `error` has a default, so history
files written before they existed still parse.

The `mixed` scenario adds `hold`, `pay-hold`, `release`, `cancel`, `read-availability` and
`read-order`; its `resend` names the action it repeats in `resent`. A hold, its payment and
its release carry `hold_id`; `told` is the state the answer reported (a hold's or an order's
status), so the checker can hold it against the final state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})
BUY_ACTION = "buy"
RESEND_ACTION = "resend"
HOLD_ACTION = "hold"
PAY_HOLD_ACTION = "pay-hold"
RELEASE_ACTION = "release"
CANCEL_ACTION = "cancel"
READ_AVAILABILITY_ACTION = "read-availability"
READ_ORDER_ACTION = "read-order"
# Actions whose success is a confirmed order with tickets (a resend repeats `resent`).
PURCHASE_ACTIONS: frozenset[str] = frozenset({BUY_ACTION, PAY_HOLD_ACTION})


class HistoryFormatError(ValueError):
    """A history file line is not a valid operation record."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One line of the history."""

    type: OpType
    op_id: str
    process: int
    buyer_id: str
    time_ns: int
    action: str = BUY_ACTION
    seat_ids: tuple[str, ...] = field(default=())
    pool_id: str | None = None
    quantity: int = 0
    order_id: str | None = None
    ticket_codes: tuple[str, ...] = field(default=())
    error: str | None = None
    idempotency_key: str | None = None
    status: int | None = None  # the answer's HTTP status; None when no answer came
    digest: str | None = None  # answer_digest of the answer's body
    replayed: bool = False  # the answer carried Idempotent-Replayed: true
    hold_id: str | None = None  # the hold a hold / pay-hold / release is about
    resent: str | None = None  # for a resend: the action it repeats (None: a buy)
    told: str | None = None  # the hold's or order's status the answer reported

    def acts_as(self) -> str:
        """The action this operation performs: a resend performs the one it repeats."""
        if self.action == RESEND_ACTION:
            return self.resent or BUY_ACTION
        return self.action

    def is_purchase(self) -> bool:
        """True for an attempt whose success is a confirmed order with its tickets."""
        return self.acts_as() in PURCHASE_ACTIONS

    def to_json(self) -> str:
        """This operation as one JSON line (without the newline)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Operation:
        """Parse one JSON line, or raise HistoryFormatError."""
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict) or raw.get("type") not in OP_TYPES:
                raise HistoryFormatError(f"not an operation record: {line[:80]!r}")
            raw["seat_ids"] = tuple(raw.get("seat_ids", ()))
            raw["ticket_codes"] = tuple(raw.get("ticket_codes", ()))
            return cls(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise HistoryFormatError(f"not an operation record: {line[:80]!r}") from exc


def answer_digest(body: object) -> str:
    """The sha256 hex of an answer body's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_history(path: Path, operations: Iterable[Operation]) -> None:
    """Write operations as JSON Lines."""
    with path.open("w", encoding="utf-8") as out:
        for op in operations:
            out.write(op.to_json() + "\n")


def read_history(path: Path) -> Iterator[Operation]:
    """Read a JSON Lines history (blank lines ignored)."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield Operation.from_json(line)
