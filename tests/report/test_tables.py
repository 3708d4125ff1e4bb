"""The ideal-wall bound per strategy, and the tables ``bench report`` prints."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench.report.summary import Pace, ideal_wall_s, window_makespan
from bench.report.tables import (
    CELL_HEADERS,
    ReportError,
    load_run,
    read_summary,
    results_table,
    scenario_tables,
    tally_table,
)
from strategies import STRATEGIES
from tests.support.synthetic import Cell, records, sweep_cells, talk_cells, write_run


def frame(strategy: str, concurrency: int, latencies: list[float], **columns: list[object]) -> pd.DataFrame:
    """A cell's rows as the strategy would have run them (shuffled: row order must not matter)."""
    cell = Cell(scenario="s", strategy=strategy, concurrency=concurrency, latencies=tuple(latencies))
    rows = pd.DataFrame([dataclasses.asdict(r) for r in records(cell)])
    for name, values in columns.items():
        rows[name] = values
    return rows.sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.mark.parametrize(
    ("strategy", "concurrency", "latencies", "meta", "expected"),
    [
        pytest.param("sequential", 1, [1.0, 2.0, 3.0], {}, 6.0, id="sequential-sum"),
        pytest.param("gather", 3, [1.0, 2.0, 3.0], {}, 3.0, id="gather-longest"),
        # Batches of 3: [1, 1, 5] then [1, 1, 1] → the straggler holds the first batch for 5.
        pytest.param("batched", 3, [1.0, 1.0, 5.0, 1.0, 1.0, 1.0], {}, 6.0, id="batched-straggler"),
        # The same calls in a window of 3: the two free slots run the other four meanwhile.
        pytest.param("semaphore", 3, [1.0, 1.0, 5.0, 1.0, 1.0, 1.0], {}, 5.0, id="semaphore-straggler"),
        pytest.param("semaphore", 2, [1.0, 1.0, 1.0, 1.0], {}, 2.0, id="semaphore-even"),
        pytest.param("workers", 2, [3.0, 1.0, 1.0, 1.0], {}, 3.0, id="workers-longest-bounds"),
        pytest.param("threads", 4, [1.0, 1.0], {}, 1.0, id="threads-window-wider-than-calls"),
        # A client-side limit the other strategies never obeyed: no rate bound for them.
        pytest.param("semaphore", 5, [0.1] * 5, {"rpm": 60.0}, 0.1, id="semaphore-ignores-rpm"),
        # 1 call a second: the 5th starts at 4 s and takes 0.1 s.
        pytest.param("rate_limited", 5, [0.1] * 5, {"rpm": 60.0}, 4.1, id="rate-limited-rpm"),
        # The window, not the rate, binds: 4 calls of 2 s one at a time.
        pytest.param("rate_limited", 1, [2.0] * 4, {"rpm": 600.0}, 8.0, id="rate-limited-window-binds"),
        # 120 prompt tokens a call at 1,200 TPM (20/s), a one-call burst: the 4th waits for
        # 4 × 120 - 120 tokens to drain (18 s).
        pytest.param("rate_limited", 4, [0.5] * 4, {"tpm": 1200.0}, 18.5, id="rate-limited-tpm"),
    ],
)
def test_ideal_wall_s(
    strategy: str, concurrency: int, latencies: list[float], meta: dict[str, float], expected: float
) -> None:
    rule = STRATEGIES[strategy].traits.ideal  # each strategy declares how its ideal is replayed
    pace = Pace(rpm=meta.get("rpm"), tpm=meta.get("tpm"))
    assert ideal_wall_s(frame(strategy, concurrency, latencies), rule, concurrency, pace) == pytest.approx(expected)


def test_ideal_wall_s_of_no_calls_is_nan() -> None:
    empty = frame("semaphore", 2, [1.0]).iloc[0:0]
    assert math.isnan(ideal_wall_s(empty, "window", 2))


def test_window_makespan_never_beats_the_classic_bounds() -> None:
    latencies = [0.2, 3.0, 0.5, 0.5, 1.5, 0.1, 0.9, 2.2, 0.4]
    for slots in (1, 2, 3, 5, 20):
        makespan = window_makespan(latencies, slots)
        assert makespan >= max(sum(latencies) / slots, max(latencies)) - 1e-12


def test_summary_ideal_counts_failed_calls_and_efficiency_is_at_most_one(tmp_path: Path) -> None:
    # Sequential with a 2 s failure: the failed call held the only slot for 2 s.
    cell = Cell(scenario="s", strategy="sequential", concurrency=1, latencies=(1.0, 2.0, 1.0), failed=frozenset({1}))
    summary = read_summary(write_run(tmp_path, [cell, *sweep_cells("t", n=40)]))
    first = summary.iloc[0]
    assert first["ideal_wall_s"] == pytest.approx(4.0)
    assert (first["ok"], first["errors"]) == (2, 1)
    assert (summary["efficiency"] <= 1.0).all()
    assert (summary["efficiency"] > 0.9).all()  # synthetic schedules are ideal but for 10 ms overhead


def render(table: object) -> str:
    console = Console(record=True, width=220)
    console.print(table)
    return console.export_text()


def test_scenario_tables_one_per_scenario_with_every_column(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path, talk_cells()))
    tables = scenario_tables(data.summary)
    assert [t.title for t in tables] == [
        "scenario ten-asks: 10 calls a cell",
        "scenario personas-200: 200 calls a cell",
    ]
    text = render(tables[1])
    for header in CELL_HEADERS:
        assert header in text
    assert "batched" in text
    assert "semaphore" in text
    assert "ten-asks" not in text
    # No sequential cell in this scenario: speedup is a dash, not 'nan'.
    assert "nan" not in text.lower()
    assert "–" in text


def test_results_table_has_a_row_per_cell(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path, sweep_cells(n=20)))
    text = render(results_table(data.summary))
    body = [line for line in text.splitlines() if line.startswith("│")]
    assert len(body) == len(data.summary) == 8
    assert "100%" in text or "99%" in text


def test_tally_table_counts_votes_and_errors_per_cell(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path, sweep_cells(n=30)))
    assert data.tally is not None
    text = render(tally_table(data.tally, data.summary))
    gather = next(line for line in text.splitlines() if "gather" in line)
    cells = [part.strip() for part in gather.strip("│").split("│")]
    # Harris, Trump, (error), total for 30 calls, call 3 failing (it would have been a Trump vote).
    assert cells[3:] == ["20", "9", "1", "30"]
    first_strategy = next(line for line in text.splitlines() if line.startswith("│"))
    assert "sequential" in first_strategy  # summary order, not alphabetical


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(lambda d: None, "no such folder", id="missing-folder"),
        pytest.param(lambda d: d.mkdir(), "no summary.csv", id="empty-folder"),
        pytest.param(
            lambda d: (d.mkdir(), (d / "summary.csv").write_text("x,y\n1,2\n")),
            "missing column",
            id="foreign-csv",
        ),
        pytest.param(lambda d: (d.mkdir(), (d / "summary.csv").write_text("")), "unreadable", id="empty-csv"),
    ],
)
def test_read_summary_rejects_what_is_not_a_run(tmp_path: Path, setup: object, message: str) -> None:
    run_dir = tmp_path / "run"
    setup(run_dir)  # type: ignore[operator]
    with pytest.raises(ReportError, match=message):
        read_summary(run_dir)
