"""``bench overhead``'s time-split rows (g)–(i) at toy sizes: each measured, the pool row read back."""

from __future__ import annotations

import math

import pytest

from bench.overhead.timing import TimingPlan, measure_timing

TOY = TimingPlan(
    rounds=1,
    wide_calls=40,
    wide_concurrency=20,
    wide_latency="lognormal:0.05,0.5",
    pool_calls=30,
    pool_concurrency=15,
    pool_size=3,
    pool_latency_s=0.05,
    hooks_calls=100,
    hooks_concurrency=10,
)


@pytest.mark.slow
def test_every_time_split_figure_is_measured_and_warm_cells_open_no_connection() -> None:
    figures = measure_timing(TOY)
    assert [f.key for f in figures] == ["g", "g", "h", "i"]
    assert all(math.isfinite(f.value) and f.value > 0 for f in figures)
    for figure in figures[:2]:
        assert "calls with connect_s > 0: 0 (without: 20)" in figure.detail
    pool = figures[2]
    assert pool.value >= 80  # 15 calls on 3 connections: most of the excess is the queue for them
    assert "pool_wait_s" in pool.detail
