"""``bench overhead``'s figures at toy sizes: every row measured, the scale run's RSS and rows read back."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

import bench.cli.overhead
from bench.cli.overhead import figures_table, overhead_command
from bench.overhead.figures import Figure, OverheadPlan, measure
from bench.overhead.scale import run_scale, scale_figures

TOY = OverheadPlan(
    calls=100,
    rounds=1,
    zero_concurrency=10,
    sched_concurrency=10,
    sched_latency_s=0.02,
    wide_concurrency=20,
    wide_latency="lognormal:0.05,0.5",
    capacity_concurrency=8,
)


@pytest.fixture(scope="module")
def toy_figures() -> list[Figure]:
    return measure(TOY)


@pytest.mark.slow
def test_every_figure_is_measured(toy_figures: list[Figure]) -> None:
    keys = [f.key for f in toy_figures]
    clients = len(TOY.clients)
    assert keys == ["a", "b"] + ["c"] * (clients + 1) + ["d"] * (3 * clients) + ["e", "e"]
    for figure in toy_figures:
        assert math.isfinite(figure.value), figure.what
        assert figure.value > 0, figure.what
    judged = [f for f in toy_figures if f.target is not None]
    assert all(f.passed is not None for f in judged)


@pytest.mark.slow
def test_scheduling_never_beats_the_ideal(toy_figures: list[Figure]) -> None:
    ratios = [f.value for f in toy_figures if f.key == "c"]
    assert len(ratios) == len(TOY.clients) + 1
    assert all(ratio >= 0.98 for ratio in ratios)


def judged(value: float, op: str = "", target: float | None = None) -> Figure:
    return Figure(key="x", what="", value=value, unit="×", op=op, target=target)


@pytest.mark.parametrize(
    ("figure", "passed"),
    [
        pytest.param(judged(0.95, "≥", 0.9), True, id="ge-met"),
        pytest.param(judged(1.2, "≤", 1.05), False, id="le-missed"),
        pytest.param(judged(99.0, "=", 100), False, id="eq-missed"),
        pytest.param(judged(math.nan, "≥", 1), None, id="nan"),
        pytest.param(judged(1.1), None, id="no-target"),
    ],
)
def test_a_figure_judges_its_target(figure: Figure, passed: bool | None) -> None:
    assert figure.passed is passed


@pytest.mark.slow
def test_the_table_shows_each_row(toy_figures: list[Figure]) -> None:
    table = figures_table(toy_figures, "toy")
    assert table.row_count == len(toy_figures)


@pytest.mark.slow
def test_the_scale_run_reports_rss_and_every_row() -> None:
    result = run_scale(calls=300, concurrency=20, bare_calls=0, report=False)
    assert result.rows == 300
    assert result.unique_ids == 300
    assert 20 < result.peak_rss_mb < 400
    figures = scale_figures(result, client="aiohttp")
    assert [f.passed for f in figures if f.passed is not None] == [True, True, True]


def test_the_command_refuses_tiny_sizes_in_one_line() -> None:
    result = CliRunner().invoke(overhead_command, ["--calls", "5"])
    assert result.exit_code == 2
    assert "--calls" in result.output
    assert bench.cli.overhead.QUICK_CALLS >= 200


@pytest.mark.slow
def test_every_per_call_figure_is_measured_and_the_ttft_pair_ran_side_by_side() -> None:
    from bench.overhead.per_call import PerCallPlan, measure_per_call

    toy = PerCallPlan(
        rounds=1,
        zero_calls=20,
        zero_concurrency=8,
        sched_calls=20,
        sched_concurrency=10,
        sched_latency_s=0.02,
        ttft_calls=16,
        ttft_concurrency=4,
        ttft="fixed:0.05",
        itl="fixed:0.002",
        output_tokens="fixed:4",
        ttft_pairs=(("openai", "aiohttp"),),
    )
    figures = measure_per_call(toy)
    assert [f.key for f in figures] == ["a", "b", "b", "b", "j", "j", "k"]
    for figure in figures:
        assert math.isfinite(figure.value), figure.what
        assert figure.value > 0, figure.what
        assert "rounds 1" in figure.detail
    ttft = [f for f in figures if f.key == "k"]
    assert all("p99" in f.detail for f in ttft)  # both clients timed every call (side_by_side refuses fewer)
