"""Comparing two runs cell by cell: direction-aware regressions, unmatched cells, odd values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from rich.console import Console

from bench.report.compare import change, compare, comparison_table
from bench.report.metrics import METRICS


def summary(**cells: dict[str, float]) -> pd.DataFrame:
    """Cells named 'strategy_C' (scenario 'main') with the given metric values."""
    rows = []
    for name, values in cells.items():
        strategy, level = name.rsplit("_", 1)
        rows.append({"scenario": "main", "strategy": strategy, "concurrency": int(level), **values})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("metric", "a", "b", "threshold", "regressed"),
    [
        pytest.param("throughput_rps", 100.0, 80.0, 10.0, True, id="throughput-drop-beyond"),
        pytest.param("throughput_rps", 100.0, 95.0, 10.0, False, id="throughput-drop-within"),
        pytest.param("throughput_rps", 100.0, 150.0, 10.0, False, id="throughput-rise-is-better"),
        pytest.param("wall_s", 10.0, 12.0, 10.0, True, id="wall-rise-beyond"),
        pytest.param("wall_s", 10.0, 5.0, 10.0, False, id="wall-drop-is-better"),
        pytest.param("latency_p99_s", 1.0, 1.05, 10.0, False, id="p99-within"),
        pytest.param("latency_p50_s", 1.0, 1.2, 10.0, True, id="p50-beyond"),
        pytest.param("efficiency", 0.9, 0.7, 10.0, True, id="efficiency-drop"),
        pytest.param("errors", 0.0, 3.0, 10.0, True, id="errors-from-zero"),
        pytest.param("errors", 0.0, 0.0, 0.0, False, id="errors-none-either-side"),
        pytest.param("errors", 4.0, 2.0, 0.0, False, id="errors-fewer"),
        pytest.param("throughput_rps", 100.0, 100.0, 0.0, False, id="equal-at-zero-threshold"),
        pytest.param("speedup_vs_sequential", math.nan, 5.0, 0.0, False, id="nan-never-regresses"),
    ],
)
def test_regression_knows_which_way_is_better(
    metric: str, a: float, b: float, threshold: float, regressed: bool
) -> None:
    result = compare(summary(semaphore_8={metric: a}), summary(semaphore_8={metric: b}), metric, threshold)
    assert len(result.deltas) == 1
    assert result.deltas[0].regressed is regressed
    assert bool(result.regressions) is regressed


def test_cells_match_by_scenario_strategy_and_concurrency() -> None:
    a = summary(semaphore_8={"wall_s": 1.0}, semaphore_16={"wall_s": 1.0}, batched_8={"wall_s": 1.0})
    b = summary(semaphore_8={"wall_s": 2.0}, semaphore_32={"wall_s": 1.0}, batched_8={"wall_s": 1.0})
    b.loc[b["strategy"] == "batched", "scenario"] = "other"
    result = compare(a, b, "wall_s", 10.0)
    assert [d.key for d in result.deltas] == [("main", "semaphore", 8)]
    assert result.deltas[0].change_pct == pytest.approx(100.0)
    assert result.only_a == (("main", "semaphore", 16), ("main", "batched", 8))
    assert result.only_b == (("main", "semaphore", 32), ("other", "batched", 8))


def test_unknown_metric_or_missing_column_is_a_value_error() -> None:
    a = summary(semaphore_8={"wall_s": 1.0})
    with pytest.raises(ValueError, match="unknown metric"):
        compare(a, a, "bogus", 10.0)
    with pytest.raises(ValueError, match="run B's summary has no column efficiency"):
        compare(summary(semaphore_8={"efficiency": 1.0}), a, "efficiency", 10.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(10.0, 15.0, 50.0, id="rise"),
        pytest.param(10.0, 5.0, -50.0, id="fall"),
        pytest.param(0.0, 0.0, 0.0, id="zero-to-zero"),
        pytest.param(0.0, 2.0, math.inf, id="from-zero"),
    ],
)
def test_change_in_percent(a: float, b: float, expected: float) -> None:
    assert change(a, b) == pytest.approx(expected)


def test_every_metric_is_a_summary_column() -> None:
    from bench.report.summary import SUMMARY_COLUMNS

    assert set(METRICS) <= set(SUMMARY_COLUMNS)


def test_table_marks_regressions() -> None:
    a = summary(semaphore_8={"throughput_rps": 100.0}, threads_8={"throughput_rps": 100.0})
    b = summary(semaphore_8={"throughput_rps": 50.0}, threads_8={"throughput_rps": 120.0})
    console = Console(record=True, width=160)
    console.print(comparison_table(compare(a, b, "throughput_rps", 10.0), "base", "new"))
    text = console.export_text()
    assert "higher is better" in text
    semaphore = next(line for line in text.splitlines() if "semaphore" in line)
    threads = next(line for line in text.splitlines() if "threads" in line)
    assert "-50.0%" in semaphore
    assert "REGRESSED" in semaphore
    assert "+20.0%" in threads
    assert "better" in threads
