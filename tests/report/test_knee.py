"""The knee of a sweep and the end line that names an endpoint's saturation."""

from __future__ import annotations

import math
from pathlib import Path

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
