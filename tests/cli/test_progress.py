"""Live progress: what a terminal shows, silence off a terminal, and counters-only on the hot path."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from rich.console import Console

from bench.cli.progress import LiveProgress
from bench.core.records import CallRecord, Status
from bench.engine.runner import CellSpec


def record(status: Status = "ok", http_429s: int = 0) -> CallRecord:
    return CallRecord(
        run_id="r",
        strategy="semaphore",
        concurrency=4,
        call_id="p00001-r000",
        persona_id=1,
        repeat=0,
        scheduled_s=0.0,
        start_s=0.0,
        end_s=0.1,
        latency_s=0.1,
        status=status,
        http_status=200 if status == "ok" else 429,
        error="" if status == "ok" else "RateLimitError",
        attempts=1 + http_429s,
        prompt_tokens=10,
        completion_tokens=5,
        answer="Harris",
        http_429s=http_429s,
    )


def cell(scenario: str = "lat=fixed:0.2|rep=1", strategy: str = "semaphore", level: int = 4) -> CellSpec:
    return CellSpec(scenario=scenario, strategy=strategy, concurrency=level, calls=())


def terminal() -> tuple[Console, StringIO]:
    out = StringIO()
    return Console(file=out, force_terminal=True, width=200, color_system=None), out


def test_terminal_shows_counts_rate_errors_429s_eta_and_cell() -> None:
    now = [100.0]
    console, out = terminal()
    # A refresh thread that never fires: renders happen only where the test says (fake clock).
    progress = LiveProgress(100, console=console, cells=3, clock=lambda: now[0], refresh_per_second=0.01)
    with progress:  # renders once: (t=100, 0 calls)
        progress.on_cell(cell())
        for _ in range(8):
            progress.on_record(record())
        progress.on_record(record("error", http_429s=3))
        progress.on_record(record(http_429s=1))
        now[0] = 104.0
        progress.render()  # (t=104, 10 calls)
        for _ in range(30):
            progress.on_record(record())
        now[0] = 107.0
        progress.refresh()  # (t=107, 40 calls): the window drops t=100, keeps the last 3 s
        shown = out.getvalue()
    assert "40/100 calls" in shown
    assert "10.0 calls/s" in shown  # 30 calls in the last 3 s
    assert "1 errors" in shown
    assert "4×429" in shown
    assert "ETA 0:00:11" in shown  # 60 left at the average 40/7 calls/s: 10.5 s
    assert "cell 1/3 lat=fixed:0.2|rep=1 semaphore C=4" in shown


def test_next_cell_replaces_the_current_one() -> None:
    console, out = terminal()
    progress = LiveProgress(10, console=console, cells=2)
    with progress:
        progress.on_cell(cell())
        progress.on_cell(cell(scenario="", strategy="gather", level=10))
        progress.refresh()
    assert progress.cell == "gather C=10"
    assert "cell 2/2 gather C=10" in out.getvalue()


@pytest.mark.parametrize(
    ("console", "quiet"),
    [
        pytest.param(Console(file=StringIO()), False, id="not-a-terminal"),
        pytest.param(Console(file=StringIO(), force_terminal=True), True, id="quiet"),
    ],
)
def test_silent_off_a_terminal_or_when_quiet(console: Console, quiet: bool) -> None:
    progress = LiveProgress(5, console=console, quiet=quiet)
    with progress:
        progress.on_cell(cell())
        for _ in range(5):
            progress.on_record(record("error"))
        progress.refresh()
    assert not progress.enabled
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]
    assert progress.done == 5
    assert progress.errors == 5


def test_records_only_bump_counters_the_display_refreshes_on_its_own_clock() -> None:
    console, _ = terminal()
    progress = LiveProgress(40_000, console=console, refresh_per_second=4)

    def report_many() -> None:
        for _ in range(10_000):
            progress.on_record(record(http_429s=1))

    workers = [threading.Thread(target=report_many) for _ in range(4)]
    with progress:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert progress.done == 40_000  # no update lost between threads
    assert progress.http_429s == 40_000
    # 40,000 records, yet only the refresh thread's few renders (4 a second, plus start and stop).
    assert 1 <= progress.renders < 200


def test_eta_and_rate_are_unknown_before_any_call() -> None:
    now = [5.0]
    console, out = terminal()
    progress = LiveProgress(10, console=console, clock=lambda: now[0], refresh_per_second=0.01)
    with progress:
        progress.refresh()
    assert progress.eta(now[0]) is None
    assert "0/10 calls · – calls/s" in out.getvalue()
    assert "ETA –" in out.getvalue()
