"""The knee of a sweep and the end line that names an endpoint's saturation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.knee import knee_index, levels, plot_knee, plot_stream, saturation_lines


def _summary(rows: list[tuple[int, float, float, float]], offered: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "scenario": f"rate-{c}" if offered else "main",
                "strategy": "semaphore",
                "concurrency": 1000 if offered else c,
                "offered_rps": float(c) if offered else math.nan,
                "throughput_rps": rps,
                "latency_p50_s": p50,
                "latency_p99_s": p99,
                "ttft_p99_s": math.nan,
            }
            for c, rps, p50, p99 in rows
        ]
    )


def test_the_issues_example_names_saturation_at_16() -> None:
    # Against 16 slots: C = 4, 16, 64 gave 20 → 76 → 76 req/s and p50 0.19 → 0.73 s.
    summary = _summary([(4, 20.0, 0.19, 0.25), (16, 76.0, 0.2, 0.3), (64, 76.0, 0.73, 0.9)])
    ((strategy, knob, cells),) = list(levels(summary))
    assert (strategy, knob) == ("semaphore", "C")
    assert cells.iloc[knee_index(cells)]["level"] == 16
    (line,) = saturation_lines(summary)
    assert "endpoint saturated at C≈16" in line


def test_an_endpoint_that_keeps_scaling_is_not_called_saturated() -> None:
    summary = _summary([(1, 5.0, 0.2, 0.21), (4, 20.0, 0.2, 0.22), (16, 79.0, 0.21, 0.25)])
    assert saturation_lines(summary) == []


@pytest.mark.slow  # matplotlib
def test_rates_are_one_sweep_across_their_scenarios(tmp_path: Path) -> None:
    summary = _summary([(10, 10.0, 0.2, 0.21), (40, 39.0, 0.22, 0.3), (80, 41.0, 1.5, 3.0)], offered=True)
    ((_, knob, cells),) = list(levels(summary))
    assert knob == "rate"
    assert cells.iloc[knee_index(cells)]["level"] == 40
    assert plot_knee(cells, "semaphore", knob, tmp_path / "knee.png").stat().st_size > 0


@pytest.mark.slow  # matplotlib
def test_the_stream_plot_needs_streamed_cells(tmp_path: Path) -> None:
    summary = _summary([(1, 5.0, 0.2, 0.21), (4, 20.0, 0.2, 0.22)])
    ((_, knob, cells),) = list(levels(summary))
    assert plot_stream(cells, "semaphore", knob, tmp_path / "s.png") is None
    streamed = cells.assign(ttft_p50_s=[0.1, 0.2], ttft_p99_s=[0.1, 0.3], itl_p50_s=0.01, itl_p99_s=0.02)
    assert plot_stream(streamed, "semaphore", knob, tmp_path / "s.png") == tmp_path / "s.png"


DIPPING = [
    (1, 5.0, 0.2, 0.21),
    (64, 62.0, 1.0, 2.4),
    (4, 19.0, 0.21, 0.25),
    (16, 60.0, 0.27, 0.45),
    (24, 58.0, 0.4, 0.8),
]


@pytest.mark.slow  # matplotlib
def test_the_knee_plot_runs_in_level_order_and_marks_the_knee_where_goodput_dips() -> None:
    """Before, latency was drawn against goodput and joined in C order: a dip in goodput folded the line back."""
    from bench.report.knee import knee_figure

    ((_, knob, cells),) = list(levels(_summary(DIPPING)))  # the sweep's run order: floor, ceiling, between
    figure = knee_figure(cells.sample(frac=1, random_state=1), "semaphore", knob)  # any order in, level order out
    goodput, latency = figure.axes
    for axis in (goodput, latency):
        for line in axis.get_lines():
            xs = np.asarray(line.get_xdata(), dtype=float)
            assert np.all(np.diff(xs) >= 0), line.get_label()  # never folds back
        dashed = [
            np.asarray(line.get_xdata(), dtype=float) for line in axis.get_lines() if line.get_linestyle() == "--"
        ]
        assert [list(xs) for xs in dashed] == [[16.0, 16.0]]  # the knee, in both panels
    (knee,) = [line for line in goodput.get_lines() if line.get_label() == "knee"]
    assert list(np.asarray(knee.get_xydata(), dtype=float)[0]) == [16.0, 60.0]
    assert goodput.get_xscale() == "log"  # 1 … 64 evenly spaced


@pytest.mark.slow  # matplotlib
def test_the_itl_panel_starts_at_zero_so_a_tiny_spread_looks_tiny() -> None:
    """Before, an ITL of 0.0200–0.0202 s filled the panel from bottom to top."""
    from bench.report.knee import stream_figure

    ((_, knob, cells),) = list(levels(_summary(DIPPING)))
    spread = [0.0200, 0.0201, 0.02005, 0.0202, 0.02015]
    streamed = cells.assign(ttft_p50_s=0.05, ttft_p99_s=0.07, itl_p50_s=spread, itl_p99_s=[v + 0.00005 for v in spread])
    figure = stream_figure(streamed, "semaphore", knob)
    assert figure is not None
    assert [axis.get_ylim()[0] for axis in figure.axes] == [0, 0]
    itl = figure.axes[1]
    for line in itl.get_lines():
        values = np.asarray(line.get_ydata(), dtype=float)
        assert np.ptp(values) / itl.get_ylim()[1] < 0.02  # a 1 % spread is drawn as about 1 % of the panel
