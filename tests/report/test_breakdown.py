"""Where the time went, from calls.csv rows: the end line and the stacked-bar plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.report.breakdown import excess_share, plot_breakdown, verdicts


def cell(strategy: str, concurrency: int, **parts: float) -> pd.DataFrame:
    values = {"prepare_s": 0.001, "pool_wait_s": 0.0, "connect_s": 0.0, "ttfb_s": 0.2, "body_s": 0.001}
    values |= {"backoff_s": 0.0, "server_s": 0.2} | parts
    latency = sum(v for k, v in values.items() if k != "server_s")
    rows = [
        {"strategy": strategy, "concurrency": concurrency, "latency_s": latency + i * 1e-5, **values}
        for i in range(100)
    ]
    return pd.DataFrame(rows)


def test_a_cell_waiting_for_the_pool_gets_one_line_naming_the_part_and_the_remedy() -> None:
    calls = pd.concat([cell("semaphore", 200, pool_wait_s=0.4), cell("semaphore", 10)])
    assert verdicts(calls) == [
        "client queueing is 66 % of p99 latency at C=200 (pool_wait_s, semaphore): raise max connections or lower C"
    ]


@pytest.mark.parametrize(
    ("part", "words"),
    [("prepare_s", "lighter client"), ("connect_s", "--warmup"), ("backoff_s", "rate limit")],
)
def test_each_client_part_has_its_own_remedy(part: str, words: str) -> None:
    (line,) = verdicts(cell("gather", 500, **{part: 0.5}))
    assert f"({part}, gather)" in line
    assert words in line


def test_one_slow_first_call_is_no_reason_to_change_the_client() -> None:
    """A small cell's p99 is its slowest call: the SDK's first request, built cold, spent 0.3 s preparing."""
    calls = cell("adaptive", 50, prepare_s=0.001)
    calls.loc[0, ["prepare_s", "latency_s"]] = (0.3, 0.503)
    assert verdicts(calls) == []


def test_a_cell_whose_time_is_the_servers_gets_no_line() -> None:
    assert verdicts(cell("semaphore", 50, pool_wait_s=0.05)) == []


def test_untraced_calls_get_no_line_and_no_plot(tmp_path: Path) -> None:
    calls = cell("semaphore", 50, prepare_s=float("nan"))
    assert verdicts(calls) == []
    assert plot_breakdown(calls, "main", tmp_path / "b.png") is None


def test_excess_share_is_the_parts_share_of_latency_beyond_the_servers_time() -> None:
    calls = cell("semaphore", 50, pool_wait_s=0.8)
    assert excess_share(calls, "pool_wait_s") == pytest.approx(0.8 / 0.802, rel=1e-3)


def test_the_plot_is_written(tmp_path: Path) -> None:
    calls = pd.concat([cell("semaphore", 1), cell("semaphore", 50, pool_wait_s=0.1)])
    path = plot_breakdown(calls, "main", tmp_path / "b.png")
    assert path is not None
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("cells", [pytest.param(1, id="one-cell"), pytest.param(6, id="six-cells")])
def test_the_legend_sits_below_the_bars_and_inside_the_figure(cells: int) -> None:
    """Before, the legend sat beside (and, on narrow figures, over) the bars."""
    from bench.report.breakdown import breakdown_figure

    calls = pd.concat([cell("semaphore", 4 * (i + 1), pool_wait_s=0.01 * i) for i in range(cells)])
    figure = breakdown_figure(calls, "main")
    assert figure is not None
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    (legend,) = figure.legends
    box = legend.get_window_extent(renderer)
    for axis in figure.axes:
        panel = axis.get_tightbbox(renderer)
        assert panel is not None
        assert not box.overlaps(panel)
        assert box.y1 <= panel.y0  # below
    whole = figure.bbox
    assert whole.x0 <= box.x0
    assert box.x1 <= whole.x1
