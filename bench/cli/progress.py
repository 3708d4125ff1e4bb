"""Live progress on a terminal: calls done/total, rate, errors, 429s, ETA and the current cell.

Fed by ``execute``'s callbacks: ``on_record`` only bumps counters (it runs once per call, on
the hot path, possibly from worker threads); rich's refresh thread renders at a few hertz.
Silent when the console is not a terminal (CI logs, pipes) or when asked to be quiet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bench.core.records import CallRecord

if TYPE_CHECKING:
    from bench.engine.runner import CellSpec

RATE_WINDOW_S = 3.0


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class LiveProgress:
    """``with LiveProgress(total, console=c) as p: execute(..., on_record=p.on_record, on_cell=p.on_cell)``"""

    def __init__(
        self,
        total: int,
        *,
        console: Console,
        cells: int | None = None,
        quiet: bool = False,
        refresh_per_second: float = 8.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.total, self.cells = total, cells
        self.enabled = not quiet and console.is_terminal
        self.done = self.errors = self.http_429s = self.cell_index = self.renders = 0
        self.cell = ""
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._recent: deque[tuple[float, int]] = deque()
        self._live: Live | None = None
        if self.enabled:
            self._live = Live(
                get_renderable=self.render,
                console=console,
                refresh_per_second=refresh_per_second,
                transient=False,
            )

    # -- callbacks (hot path: counters only) --------------------------------------------------
    def on_record(self, record: CallRecord) -> None:
        with self._lock:
            self.done += 1
            if record.status == "error":  # a cancelled call (an interrupt) did not fail
                self.errors += 1
            self.http_429s += record.http_429s

    def on_cell(self, spec: CellSpec) -> None:
        with self._lock:
            self.cell_index += 1
            self.cell = f"{spec.scenario + ' ' if spec.scenario else ''}{spec.strategy} C={spec.concurrency}"

    # -- display ------------------------------------------------------------------------------
    def rate(self, now: float) -> float | None:
        """Calls per second over the last few seconds (None until there is a span to measure)."""
        self._recent.append((now, self.done))
        while len(self._recent) > 2 and now - self._recent[1][0] >= RATE_WINDOW_S:
            self._recent.popleft()
        (t0, n0), (t1, n1) = self._recent[0], self._recent[-1]
        return (n1 - n0) / (t1 - t0) if t1 - t0 > 0.2 else None

    def eta(self, now: float) -> float | None:
        """Seconds left at the average rate since the start (cells differ; the average holds better)."""
        elapsed = now - self._start
        if self.done == 0 or elapsed <= 0:
            return None
        return max(0, self.total - self.done) / (self.done / elapsed)

    def render(self) -> RenderableType:
        self.renders += 1
        now = self._clock()
        rate, eta = self.rate(now), self.eta(now)
        cells = f"cell {self.cell_index}/{self.cells}" if self.cells else f"cell {self.cell_index}"
        text = Text.assemble(
            (f"{self.done:,}/{self.total:,} calls", "bold"),
            f" · {'–' if rate is None else f'{rate:,.1f}'} calls/s",
            (f" · {self.errors:,} errors", "red" if self.errors else ""),
            (f" · {self.http_429s:,}×429", "yellow" if self.http_429s else ""),
            f" · ETA {'–' if eta is None else _duration(eta)}",
            f" · elapsed {_duration(now - self._start)}",
            (f" · {cells} {self.cell}" if self.cell else "", "cyan"),
        )
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=30)
        grid.add_column()
        grid.add_row(ProgressBar(total=max(1, self.total), completed=self.done, width=30), text)
        return grid

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def __enter__(self) -> LiveProgress:
        self._start = self._clock()
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()  # renders once more: the final counts stay on screen
