"""Tables that fit the terminal: column groups packed into as few stacked tables as fit.

A report with more columns than a terminal has room for must not let rich cut its headers and
cells (`stra…`, `VIOL…`). Here every column is at least as wide as its longest word, so a header
may wrap at its spaces but no word is ever cut; groups of columns are packed greedily into
tables no wider than the console, and each table repeats the key column (the strategy). A wide
terminal gets one table, a narrow one several. Below the narrowest layout (one group per table)
the columns keep their minimum widths and the terminal wraps the lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

Row = TypeVar("Row")
Justify = Literal["left", "right"]


# Not slots: a slotted frozen dataclass cannot be built through its subscripted alias
# (`Column[RaceResult](...)` sets `__orig_class__`).
@dataclass(frozen=True)
class Column(Generic[Row]):
    """One column: its header (spaces let it wrap), its cell (rich markup), when it is shown."""

    header: str
    cell: Callable[[Row], str]
    justify: Justify = "right"
    shown: Callable[[Sequence[Row]], bool] | None = None  # None: always

    def is_shown(self, rows: Sequence[Row]) -> bool:
        """True when the rows have something to show in this column."""
        return self.shown is None or self.shown(rows)


def stacked_tables(
    key: Column[Row],
    groups: Sequence[Sequence[Column[Row]]],
    rows: Sequence[Row],
    width: int,
) -> list[Table]:
    """The groups' shown columns in as few tables of at most `width` columns as they fit."""
    packed: list[list[Column[Row]]] = []
    for group in ([c for c in g if c.is_shown(rows)] for g in groups):
        if not group:
            continue
        if packed and _widths([key, *packed[-1], *group], rows, width) is not None:
            packed[-1].extend(group)
        else:
            packed.append(group)
    return [table_of([key, *columns], rows, width) for columns in packed]


def table_of(columns: Sequence[Column[Row]], rows: Sequence[Row], width: int) -> Table:
    """One table of `columns`, headers wrapped as needed to fit `width`, no word cut."""
    shown = [c for c in columns if c.is_shown(rows)]
    cells = [[c.cell(row) for c in shown] for row in rows]
    widths = _widths(shown, rows, width, cells) or _minimums(shown, cells)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column, column_width in zip(shown, widths, strict=True):
        table.add_column(column.header, justify=column.justify, width=column_width)
    for line in cells:
        table.add_row(*line)
    return table


def natural_width(console: Console, table: Table) -> int:
    """How wide `table` is when nothing has to wrap."""
    return console.measure(table, options=console.options.update_width(100_000)).maximum


def print_whole(console: Console, table: Table) -> None:
    """Print `table` uncut even when it is wider than the console (the terminal wraps it)."""
    needed = natural_width(console, table)
    if needed <= console.width:
        console.print(table)
        return
    # Console.print clamps any width it is given to the console's own: widen it for this table.
    previous = console.width
    console.width = needed
    try:
        console.print(table, crop=False)
    finally:
        console.width = previous


def _widths(
    columns: Sequence[Column[Row]],
    rows: Sequence[Row],
    width: int,
    cells: Sequence[Sequence[str]] | None = None,
) -> list[int] | None:
    """Column widths (content only) that fit `width`, or None when even the minimums do not."""
    cells = cells if cells is not None else [[c.cell(row) for c in columns] for row in rows]
    widest = [_longest(column.header, cells, i, _plain) for i, column in enumerate(columns)]
    minimums = _minimums(columns, cells)
    room = width - _OVERHEAD_PER_COLUMN * len(columns) + 1
    excess = sum(widest) - room
    if sum(minimums) > room:
        return None
    widths = list(widest)
    # Wrap the headers with the most to gain first; each column stops at its longest word.
    for i in sorted(range(len(columns)), key=lambda i: widest[i] - minimums[i], reverse=True):
        if excess <= 0:
            break
        cut = min(excess, widths[i] - minimums[i])
        widths[i] -= cut
        excess -= cut
    return widths


# A SIMPLE_HEAD table without edges: one space of padding each side, one divider between.
_OVERHEAD_PER_COLUMN = 3


def _minimums(columns: Sequence[Column[Row]], cells: Sequence[Sequence[str]]) -> list[int]:
    return [_longest(column.header, cells, i, _words) for i, column in enumerate(columns)]


def _longest(
    header: str, cells: Sequence[Sequence[str]], index: int, pieces: Callable[[str], list[str]]
) -> int:
    texts = [header] + [Text.from_markup(line[index]).plain for line in cells]
    return max((len(piece) for text in texts for piece in pieces(text)), default=1)


def _plain(text: str) -> list[str]:
    return text.splitlines() or [""]


def _words(text: str) -> list[str]:
    return text.split() or [""]
