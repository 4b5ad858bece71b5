"""What the SQLite and PostgreSQL transactions share: DB-API `conn.execute(sql, params)`.

The two schemas have the same tables and columns, so record mixins write their SQL once with
`?` marks; a transaction class names its dialect's parameter mark and row-locking clauses.
"""

from __future__ import annotations

from typing import Any


class Dialect:
    """Base of the shared record mixins; SQLite values (PostgresTx overrides them)."""

    _MARK = "?"
    # Row locks: a fenced write reads the key row FOR KEY SHARE and a takeover locks it FOR
    # UPDATE, so the takeover waits for the write; a reaper skips rows another reaper holds.
    # SQLite has one writer at a time: no clauses needed.
    _FOR_SHARE = ""
    _FOR_UPDATE = ""
    _SKIP_LOCKED = ""

    def _run(self, sql: str, params: tuple[object, ...]) -> Any:
        # The connection's type differs per driver; both cursors have rowcount and fetch*.
        conn: Any = getattr(self, "_conn")  # noqa: B009 - set by the transaction class
        return conn.execute(sql.replace("?", self._MARK), params)
