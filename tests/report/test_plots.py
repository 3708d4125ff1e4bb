"""Plots: the files a run gets, and the timeline's lanes (never overlapping, as many as the peak)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from bench.report.plots import write_plots
from bench.report.tables import load_run
from bench.report.timeline import assign_lanes, in_flight, timeline_figure
from tests.support.synthetic import Cell, lognormal, records, sweep_cells, talk_cells, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def lanes_overlap(starts: np.ndarray, ends: np.ndarray, lanes: np.ndarray) -> bool:
    for lane in np.unique(lanes):
        mine = np.flatnonzero(lanes == lane)
        order = mine[np.argsort(starts[mine])]
        if np.any(starts[order][1:] < ends[order][:-1]):
            return True
    return False


def random_intervals(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0, 10, n)
    return starts, starts + rng.lognormal(0, 0.8, n)


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in range(5)])
def test_lanes_never_overlap_and_match_the_peak_in_flight(seed: int) -> None:
    starts, ends = random_intervals(seed, 400)
    lanes = assign_lanes(starts, ends)
    _, counts = in_flight(starts, ends)
    assert not lanes_overlap(starts, ends, lanes)
    assert lanes.max() + 1 == counts.max()
    assert counts[-1] == 0
    assert counts.min() >= 0


@pytest.mark.parametrize(
    ("strategy", "concurrency"),
    [
        pytest.param("semaphore", 8, id="window-8"),
        pytest.param("batched", 16, id="batches-16"),
        pytest.param("sequential", 1, id="sequential"),
        pytest.param("gather", 50, id="gather"),
    ],
)
def test_a_full_window_of_c_shows_c_lanes(strategy: str, concurrency: int) -> None:
    cell = Cell(scenario="s", strategy=strategy, concurrency=concurrency, latencies=lognormal(50, 4))
    rows = records(cell)
    starts = np.array([r.start_s for r in rows])
    ends = np.array([r.end_s for r in rows])
    lanes = assign_lanes(starts, ends)
    assert lanes.max() + 1 == concurrency
    assert not lanes_overlap(starts, ends, lanes)


def test_a_call_ending_as_another_starts_shares_its_lane() -> None:
    lanes = assign_lanes(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    times, counts = in_flight(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert lanes.tolist() == [0, 0, 0]
    assert counts.max() == 1
    assert times[-1] == 3.0


def test_lowest_free_lane_is_reused() -> None:
    # Lanes 0, 1, 2 busy; lane 1 frees first, so the 4th call takes lane 1.
    starts = np.array([0.0, 0.0, 0.0, 1.5])
    ends = np.array([3.0, 1.0, 3.0, 2.0])
    assert assign_lanes(starts, ends).tolist() == [0, 1, 2, 1]


def test_timeline_caps_bars_and_says_so() -> None:
    cell = Cell(scenario="s", strategy="semaphore", concurrency=4, latencies=lognormal(120, 8))
    frame = load_frame(cell)
    capped = timeline_figure(frame, scenario="s", strategy="semaphore", concurrency=4, max_bars=50)
    top = capped.axes[0]
    assert len(top.collections[0].get_paths()) == 50
    assert "first 50 of 120 calls" in top.get_title()
    assert "peak 4 in flight" in top.get_title()
    full = timeline_figure(frame, scenario="s", strategy="semaphore", concurrency=4)
    assert len(full.axes[0].collections[0].get_paths()) == 120
    assert "first" not in full.axes[0].get_title()


def load_frame(cell: Cell) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(r) for r in records(cell)])


def is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_write_plots_makes_a_set_per_scenario(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path / "run", sweep_cells(n=40) + talk_cells()))
    written, notes = write_plots(data.summary, data.calls, tmp_path / "run" / "plots")
    names = {p.name for p in written}
    kinds = ("throughput", "latency", "latency-cdf")
    expected = {
        *(f"{s}-{kind}.png" for s in ("main", "ten-asks", "personas-200") for kind in kinds),
        "main-speedup.png",
        "ten-asks-speedup.png",
        *(f"main-timeline-{s}-c{c}.png" for s in ("semaphore", "batched") for c in (1, 4, 16)),
        "main-timeline-sequential-c1.png",
        "main-timeline-gather-c40.png",
        "ten-asks-timeline-sequential-c1.png",
        "ten-asks-timeline-gather-c10.png",
        "personas-200-timeline-batched-c100.png",
        "personas-200-timeline-semaphore-c100.png",
    }
    assert names == expected
    assert len(written) == len(names)
    assert sorted(p.name for p in (tmp_path / "run" / "plots").iterdir()) == sorted(names)
    assert all(is_png(p) for p in written)
    assert notes == []  # personas-200 has no sequential cell, hence no speedup plot, but that is no news


@pytest.mark.slow
def test_write_plots_without_calls_or_timelines(tmp_path: Path) -> None:
    data = load_run(write_run(tmp_path / "run", talk_cells()[:2]))
    out = tmp_path / "plots"
    written, notes = write_plots(data.summary, None, out)
    assert {p.name for p in written} == {f"ten-asks-{kind}.png" for kind in ("throughput", "latency", "speedup")}
    assert notes == ["ten-asks: no latency CDF or timelines (no calls.csv)"]
    written, _ = write_plots(data.summary, data.calls, out, timelines=False)
    assert not any("timeline" in p.name for p in written)
    assert "ten-asks-latency-cdf.png" in {p.name for p in written}


@pytest.mark.slow
def test_odd_cells_plot_without_warnings(tmp_path: Path) -> None:
    """A cell that failed entirely, one that sent nothing (interrupted), a lone cell: no warning, no crash."""
    cells = [
        Cell(
            scenario="odd",
            strategy="semaphore",
            concurrency=4,
            latencies=(0.1,) * 8,
            failed=frozenset(range(8)),
        ),
        Cell(scenario="odd", strategy="semaphore", concurrency=8, latencies=()),
        Cell(scenario="odd", strategy="rate_limited", concurrency=4, latencies=lognormal(8, 3)),
        Cell(scenario="lone", strategy="workers", concurrency=3, latencies=lognormal(9, 4)),
    ]
    data = load_run(write_run(tmp_path / "run", cells))
    written, _ = write_plots(data.summary, data.calls, tmp_path / "plots")
    names = {p.name for p in written}
    assert "odd-timeline-semaphore-c4.png" in names
    assert "odd-timeline-semaphore-c8.png" not in names  # no rows, nothing to draw
    assert {"lone-throughput.png", "lone-latency.png", "lone-latency-cdf.png"} <= names
    assert all(is_png(p) for p in written)
    assert not any("speedup" in p.name for p in written)  # neither scenario has a sequential cell


def test_talk_cells_share_a_time_scale_sweeps_do_not() -> None:
    talk = load_frame(talk_cells()[0])
    shared = timeline_figure(talk, scenario="t", strategy="sequential", concurrency=1, x_max=100.0)
    own = timeline_figure(talk, scenario="t", strategy="sequential", concurrency=1)
    assert shared.axes[1].get_xlim()[1] == pytest.approx(101.0)
    assert own.axes[1].get_xlim()[1] < 40.0


def test_a_window_of_100_keeps_its_lanes_apart_in_one_colour_per_meaning() -> None:
    """The default run's semaphore C=100: before, lanes touched (no gap) and ok calls alternated two blues."""
    cell = Cell(
        scenario="s",
        strategy="semaphore",
        concurrency=100,
        latencies=lognormal(300, 7, 2.6, 0.25),
        retried=frozenset({3, 40}),
    )
    top = timeline_figure(load_frame(cell), scenario="s", strategy="semaphore", concurrency=100).axes[0]
    bars = top.collections[0]
    assert isinstance(bars, PolyCollection)
    heights = [float(np.ptp(np.asarray(path.vertices)[:, 1])) for path in bars.get_paths()]
    assert max(heights) <= 0.8  # a gap of a fifth of a lane or more: lanes never merge
    assert top.bbox.height / 100 >= 5  # pixels a lane: the figure grows with the lanes
    colours = {tuple(row) for row in np.round(np.asarray(bars.get_facecolor(), dtype=float), 3)}
    assert len(colours) == 2  # ok, retried: one colour each
    legend = top.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["ok (298)", "ok after retries (2)"]
    assert all(float(t.get_fontsize()) >= 9 for t in legend.get_texts())


@pytest.mark.slow  # matplotlib, the whole report
def test_a_report_on_a_sweep_that_sent_nothing_prints_no_warning(tmp_path: Path) -> None:
    """Before, a sweep interrupted before its first call put a log axis on nothing, and matplotlib
    warned in the middle of the report ("Data has no positive values")."""
    from tests.support.cli_runs import invoke_bench

    cells = [Cell(scenario="stopped", strategy="semaphore", concurrency=c, latencies=()) for c in (1, 4, 16)]
    run_dir = write_run(tmp_path / "run", cells)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = invoke_bench(["report", str(run_dir)])
    assert [str(w.message) for w in caught] == []
    assert report.returncode == 0
    assert report.stderr == ""  # not even "warning: plots not written"
    assert (run_dir / "plots" / "stopped-throughput.png").is_file()


def test_in_flight_merges_ends_before_starts_as_one_sort_of_both_would() -> None:
    rng = np.random.default_rng(4)
    starts = np.round(rng.uniform(0, 5, 3000), 1)  # ties everywhere: ends before starts at one time
    ends = starts + np.round(rng.uniform(0, 1, 3000), 1)
    times, counts = in_flight(starts, ends)
    joint = np.concatenate([ends, starts])
    deltas = np.concatenate([-np.ones(len(ends), np.int64), np.ones(len(starts), np.int64)])
    order = np.lexsort((deltas, joint))
    assert np.array_equal(times, joint[order])
    assert np.array_equal(counts, np.cumsum(deltas[order]))


def test_a_large_cells_cdf_is_drawn_through_a_bounded_number_of_steps() -> None:
    from matplotlib.figure import Figure

    from bench.report.plots import CDF_STEPS, _cdf_line

    rng = np.random.default_rng(5)
    n = 3 * CDF_STEPS
    cell = pd.DataFrame(
        {"status": np.where(np.arange(n) % 10 == 0, "error", "ok"), "latency_s": rng.lognormal(0, 1, n)}
    )
    axis = Figure().subplots()
    _cdf_line(axis, cell, "big", "black")
    (line,) = axis.get_lines()
    xs, ys = (np.asarray(values, dtype=float) for values in line.get_data())
    ok = np.sort(cell["latency_s"][cell["status"] == "ok"].to_numpy())
    assert len(xs) <= CDF_STEPS + 1 < len(ok)
    assert (xs[0], xs[1], xs[-1]) == (ok[0], ok[0], ok[-1])  # from the fastest call to the slowest
    assert (ys[0], ys[-1]) == (0.0, 1.0)
    picked = np.searchsorted(ok, xs[1:], side="right")  # each step at the share of calls up to it
    assert np.allclose(ys[1:], picked / len(ok))
    assert "(6000 errors left out)" in str(line.get_label())
