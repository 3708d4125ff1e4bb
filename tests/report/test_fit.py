"""Tables fit the terminal: columns are dropped (and named), never a strategy name or a number cut."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench.report.compare import compare, comparison_table
from bench.report.fit import Column, FittedTable
from bench.report.ratelimits import rate_limit_frame, rate_limit_table
from bench.report.tables import CELL_HEADERS, load_run, results_table, scenario_tables, tally_table
from tests.support.cli_runs import bench_env, run_bench
from tests.support.synthetic import sweep_cells, talk_cells, write_run


def render(table: object, width: int) -> str:
    console = Console(record=True, width=width)
    console.print(table)
    return console.export_text()


def assert_fits(text: str, width: int) -> None:
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text


@pytest.mark.parametrize("width", [80, 100])
def test_results_table_drops_columns_names_them_and_cuts_nothing(tmp_path: Path, width: int) -> None:
    data = load_run(write_run(tmp_path, [*talk_cells(), *sweep_cells("sweep", n=20)]))
    text = render(results_table(data.summary), width)
    assert_fits(text, width)
    for row in data.summary.to_dict("records"):
        assert f" {row['strategy']} " in text
        assert f"{row['wall_s']:.2f}" in text  # wall time is the last number to go
    caption = " ".join(text.split("not shown, to fit:")[1].split())
    dropped = [h for h in CELL_HEADERS if f" {h}," in f" {caption}" or f" {h} (" in f" {caption}"]
    assert dropped
    assert "scenario" not in caption  # two scenarios: the column tells rows apart, so it stays


def test_a_wide_terminal_gets_every_column_and_no_caption(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path, talk_cells()))
    text = render(results_table(data.summary), 220)
    assert "not shown" not in text
    for header in ("scenario", *CELL_HEADERS):
        assert header in text


def test_columns_of_nothing_go_first() -> None:
    columns = [Column(header="name", left=True, droppable=False), Column(header="count"), Column(header="zeros")]
    rows = [["a-long-name", "12345", "0"], ["another-name", "67890", "–"]]
    table = FittedTable(title="t", columns=columns, rows=rows, drop_order=("count",))
    assert table.drop_order == ("zeros", "count")
    text = render(table, 28)
    assert "12345" in text
    assert "zeros" in text.split("not shown")[1]


def test_every_report_table_fits_80_columns(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path, sweep_cells(n=30)))
    assert data.tally is not None
    summary = data.summary.assign(utilisation=0.9, sched_latency_p50_s=0.2, sched_latency_p99_s=0.4)
    tables: list[object] = [
        *scenario_tables(data.summary),
        tally_table(data.tally, data.summary),
        rate_limit_table(rate_limit_frame(summary)),
        comparison_table(compare(data.summary, data.summary, "throughput_rps", 10.0), "a-run", "b-run"),
    ]
    for table in tables:
        assert_fits(render(table, 80), 80)


@pytest.mark.slow
def test_bench_report_at_80_columns(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", [*talk_cells(), *sweep_cells("sweep", n=20)])
    result = run_bench(["report", str(run_dir), "--no-plots"], cwd=tmp_path, env=bench_env(COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    assert_fits(result.stdout, 80)
    summary = pd.read_csv(run_dir / "summary.csv")
    assert all(f" {name} " in result.stdout for name in summary["strategy"])
    assert "not shown, to fit:" in result.stdout
