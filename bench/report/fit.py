"""Tables that fit the terminal: drop the least important columns, never cut a name or a number.

A ``FittedTable`` is built at print time for the width it is printed at. When the whole table does
not fit, it drops columns (those of only zeros and dashes first, then by the table's own order of
importance) and says which in a caption; the CSV files keep every column.
Text cells, titles and headers are shown as they are (never read as rich markup: a scenario or an
answer named ``[/]`` is data); a cell that wants a style is a ``rich.text.Text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

_NATURAL: Final = 100_000  # a width no table reaches: measures a table's unwrapped width
_NOTHING: Final = frozenset({"", "0", "–"})

Cell = str | Text


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column: its header, left-justified or not, whether it may be dropped to fit, and whether
    its cells may wrap at spaces (words, never numbers); ``note`` explains the header and ``dash``
    what a "–" in it means, in the table's legend line (only while the column is shown)."""

    header: str
    left: bool = False
    droppable: bool = True
    wrap: bool = False
    note: str = ""
    dash: str = ""


class FittedTable:
    """A rich renderable: the table with as many columns as fit ``options.max_width``."""

    def __init__(
        self,
        *,
        title: str,
        columns: Sequence[Column],
        rows: Sequence[Sequence[Cell]],
        drop_order: Sequence[str] = (),
    ) -> None:
        """``drop_order``: droppable headers, least important first (others after them, right to left)."""
        self.title = title
        self.columns = tuple(columns)
        self.rows = tuple(tuple(row) for row in rows)
        droppable = [c.header for c in self.columns if c.droppable]
        ranked = [h for h in drop_order if h in droppable] + [h for h in reversed(droppable) if h not in drop_order]
        # A column of zeros and dashes says only that nothing happened: it goes first.
        empty = [h for h in ranked if all(_plain(row[self._index(h)]) in _NOTHING for row in self.rows)]
        self.drop_order = tuple(empty + [h for h in ranked if h not in empty])

    def _index(self, header: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.header == header)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def table(self, shown: Sequence[str] | None = None, dropped: Sequence[str] = ()) -> Table:
        """The rich table with the ``shown`` headers (all by default) and a caption naming ``dropped``.

        With columns dropped, the table goes without side borders too (a column's worth of width).
        """
        keep = [i for i, c in enumerate(self.columns) if shown is None or c.header in shown]
        table = Table(title=Text(self.title), title_justify="left", caption_justify="left")
        caption = [self.legend(keep)] if self.legend(keep) else []
        if dropped:
            table.box = box.SIMPLE_HEAD
            caption.append(f"not shown, to fit: {', '.join(dropped)} (all in the CSV files)")
        if caption:
            table.caption = Text("\n".join(caption))
        for i in keep:
            column = self.columns[i]
            justify: Literal["left", "right"] = "left" if column.left else "right"
            table.add_column(Text(column.header), justify=justify, no_wrap=not column.wrap)
        for row in self.rows:
            table.add_row(*(_text(row[i]) for i in keep))
        return table

    def legend(self, keep: Sequence[int]) -> str:
        """One line for the terms a newcomer will not know, among the columns at ``keep``."""
        parts: list[str] = []
        for i in keep:
            column = self.columns[i]
            dashed = column.dash and any(_plain(row[i]) == "–" for row in self.rows)
            dash = f"–: {column.dash}" if dashed else ""
            if column.note:
                parts.append(f"{column.note} ({dash})" if dash else column.note)
            elif dash:
                parts.append(f"{column.header} {dash}")
        return " · ".join(parts)

    def fit(self, width: int, console: Console | None = None) -> Table:
        """The table with the most columns whose unwrapped width is within ``width``."""
        console = console or Console(width=_NATURAL)
        full = self.table()
        if _natural_width(console, full) <= width:
            return full
        shown = [c.header for c in self.columns]
        dropped: list[str] = []
        for header in self.drop_order:
            shown.remove(header)
            dropped.append(header)
            if _natural_width(console, self.table(shown, dropped)) <= width:
                break
        # The caption wraps at spaces within the table's width; the columns never wrap.
        return self.table(shown, dropped)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fit(options.max_width, console)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.fit(options.max_width, console))


def _natural_width(console: Console, table: Table) -> int:
    """The table's width when nothing wraps (its caption aside)."""
    return Measurement.get(console, console.options.update_width(_NATURAL), table).maximum
