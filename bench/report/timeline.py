"""The "checkout lanes" picture of one cell: a bar per call in the lane it occupied, and calls in flight."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

MAX_BARS: Final = 2_000
DPI: Final = 110
# One colour per meaning; back-to-back calls in a lane are told apart by a thin white edge, not a second shade.
STATUS_COLOURS: Final = {"ok": "#1f77b4", "retried": "#ff7f0e", "error": "#d62728"}
LANE_HALF: Final = 0.38  # a bar's half height: lanes 1 apart keep a gap of a quarter lane, however many there are
LANES_IN_7_INCHES: Final = 60  # more lanes than this: the figure grows (up to MAX_HEIGHT) so each lane keeps ~5 px
MAX_HEIGHT: Final = 16.0
LABELS: Final = {"ok": "ok", "retried": "ok after retries", "error": "error"}

FloatArray = npt.NDArray[np.float64]


def assign_lanes(starts: FloatArray, ends: FloatArray) -> npt.NDArray[np.int64]:
    """Each call's lane: the lowest lane free when it starts (a call ending at t frees its lane for t).

    Greedy by start time colours an interval graph optimally, so the lanes used equal the
    peak number of calls in flight: C lanes for a window of C that was kept full.
    """
    lanes = np.zeros(len(starts), dtype=np.int64)
    busy: list[tuple[float, int]] = []  # (end, lane) of calls still running
    free: list[int] = []
    opened = 0
    for index in np.argsort(starts, kind="stable"):
        start = float(starts[index])
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, opened = opened, opened + 1
        lanes[index] = lane
        heapq.heappush(busy, (float(ends[index]), lane))
    return lanes


def in_flight(starts: FloatArray, ends: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Calls in flight as a step function: count[i] holds from times[i] until times[i + 1].

    At equal times ends count before starts, as in ``assign_lanes``. The ends and the starts are sorted
    apart and merged by position (each one's place: those of its own kind before it, and those of the other
    kind before it), a byte a step: a million calls' two million steps, not sorted together as 8-byte pairs.
    """
    ends = np.sort(np.asarray(ends, dtype=np.float64))
    starts = np.sort(np.asarray(starts, dtype=np.float64))
    times = np.empty(len(ends) + len(starts), dtype=np.float64)
    steps = np.empty(len(times), dtype=np.int8)
    at = np.searchsorted(starts, ends, side="left")  # the starts before an end: those strictly earlier
    at += np.arange(len(ends))
    times[at], steps[at] = ends, -1
    at = np.searchsorted(ends, starts, side="right")  # the ends before a start: those at or before it
    at += np.arange(len(starts))
    times[at], steps[at] = starts, 1
    del at
    return times, np.cumsum(steps, dtype=np.int64)


ENVELOPE_BINS: Final = 4_000  # about the pixels of the time axis, several times over
ENVELOPE_AT: Final = 50_000  # steps beyond which the in-flight line is drawn as its envelope


def envelope(
    times: FloatArray, counts: npt.NDArray[np.int64], bins: int = ENVELOPE_BINS
) -> tuple[FloatArray, npt.NDArray[np.int64], bool]:
    """The in-flight step line as the most in flight within each of ``bins`` equal slices of time, when
    it has more steps than a picture can show (a million calls make two million steps); else as is."""
    if len(times) <= ENVELOPE_AT:
        return times, counts, False
    edges = np.linspace(float(times[0]), float(times[-1]), bins + 1)
    first = np.searchsorted(times, edges[:-1], side="left")
    # Each slice's max over the steps inside it and the step already holding at its left edge.
    holding = np.concatenate([[0], counts])[first]
    starts = np.minimum(first, len(counts) - 1)
    inside = np.maximum.reduceat(counts, starts)
    has_steps = np.searchsorted(times, edges[1:], side="left") > first
    top = np.where(has_steps, np.maximum(inside, holding), holding)
    return edges[:-1], top.astype(np.int64), True


def _kinds(cell: pd.DataFrame) -> list[str]:
    retried = cell["attempts"].fillna(1).to_numpy() > 1
    failed = (cell["status"] != "ok").to_numpy()
    return ["error" if bad else "retried" if again else "ok" for bad, again in zip(failed, retried, strict=True)]


def timeline_figure(
    cell: pd.DataFrame,
    *,
    scenario: str,
    strategy: str,
    concurrency: int,
    wall_s: float | None = None,
    max_bars: int = MAX_BARS,
    x_max: float | None = None,
) -> Figure:
    """Bars from start_s to end_s in greedy lanes (top), calls in flight over time (bottom).

    ``x_max`` puts several cells on one time scale, so their pictures compare side by side.
    """
    # The four columns drawn, not the whole cell: a million-call cell is sorted, not copied whole.
    cell = cell[["start_s", "end_s", "attempts", "status"]].sort_values("start_s", kind="stable")
    cell = cell.reset_index(drop=True)
    starts = cell["start_s"].to_numpy(np.float64)
    ends = cell["end_s"].to_numpy(np.float64)
    times, counts = in_flight(starts, ends)
    peak = int(counts.max()) if len(counts) else 0
    shown = min(len(cell), max_bars)
    # Greedy lanes in start order: the first ``shown`` calls' lanes depend on no later call.
    lanes = assign_lanes(starts[:shown], ends[:shown])
    times, counts, enveloped = envelope(times, counts)
    end = float(ends.max()) if len(ends) else 1.0
    wall = wall_s if wall_s is not None and np.isfinite(wall_s) else end

    # Fixed margins, not constrained layout: a run draws one of these per cell, and it halves the time.
    height = 7.0 if peak <= LANES_IN_7_INCHES else min(MAX_HEIGHT, 7.0 * peak / LANES_IN_7_INCHES)
    fig = Figure(figsize=(11, height), dpi=DPI)
    margin = 0.5 / height  # half an inch above and below, whatever the height
    title_room = (0.75 if shown < len(cell) else 0.5) / height
    fig.subplots_adjust(left=0.07, right=0.83, bottom=margin, top=1 - title_room, hspace=0.08 * 7 / height)
    ratios = [(height - 2.5) / 1.5, 1]  # the in-flight panel stays about 1.5 in. high; the lanes get the rest
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    half = LANE_HALF
    verts = np.stack(
        [
            np.column_stack([starts[:shown], lanes[:shown] - half]),
            np.column_stack([ends[:shown], lanes[:shown] - half]),
            np.column_stack([ends[:shown], lanes[:shown] + half]),
            np.column_stack([starts[:shown], lanes[:shown] + half]),
        ],
        axis=1,
    )
    kinds = _kinds(cell.iloc[:shown])
    colours = [STATUS_COLOURS[kind] for kind in kinds]
    # The white edge is what parts two calls that follow each other in a lane (one colour per meaning).
    top.add_collection(
        PolyCollection(list(verts), facecolors=colours, edgecolors="white", linewidths=0.6 if peak <= 40 else 0.35)
    )
    top.set_ylim(-0.6, max(peak, 1) - 0.4)
    top.set_ylabel(f"lane: one per call in flight ({peak} used)")
    if peak <= 20:
        top.set_yticks(range(peak))
    else:
        top.yaxis.set_major_locator(MaxNLocator(integer=True))
    all_kinds = _kinds(cell)
    top.legend(
        handles=[
            Patch(color=STATUS_COLOURS[kind], label=f"{LABELS[kind]} ({all_kinds.count(kind)})")
            for kind in STATUS_COLOURS
            if kind in all_kinds
        ],
        title="calls",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),  # outside: the lanes are full right up to the edge
        fontsize=9,
        title_fontsize=9,
    )
    title = f"{scenario} · {strategy} C={concurrency}: {len(cell)} calls, peak {peak} in flight, wall {wall:.2f} s"
    if shown < len(cell):
        title += f"\nbars: first {shown:,} of {len(cell):,} calls by start time (in-flight line: all calls)"
        cut = float(starts[shown - 1])
        top.axvspan(cut, end, color="0.92", zorder=0)
        top.text(
            (cut + end) / 2,
            (peak - 1) / 2,
            f"{len(cell) - shown:,} later calls\nnot drawn",
            ha="center",
            va="center",
            color="0.4",
            fontsize=10,
        )
    top.set_title(title, fontsize=11)

    label = "in flight (max per bin)" if enveloped else "in flight"
    bottom.step(times, counts, where="post", color="tab:blue", linewidth=0.9, label=label)
    bottom.fill_between(times, counts, step="post", color="tab:blue", alpha=0.15)
    bottom.axhline(concurrency, color="0.3", linestyle="--", linewidth=1, label=f"C = {concurrency}")
    bottom.set_ylim(0, max(peak, concurrency) * 1.15 + 0.5)
    bottom.set_ylabel("calls in flight")
    bottom.set_xlabel("time since cell start (s)")
    bottom.set_xlim(0, max(end, wall, x_max or 0.0) * 1.01)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (top, bottom):
        axis.grid(axis="x", alpha=0.3)
    return fig


def write_timeline(
    cell: pd.DataFrame,
    path: Path,
    *,
    scenario: str,
    strategy: str,
    concurrency: int,
    wall_s: float | None = None,
    max_bars: int = MAX_BARS,
    x_max: float | None = None,
) -> Path:
    """``timeline_figure`` saved as PNG at ``path``."""
    fig = timeline_figure(
        cell,
        scenario=scenario,
        strategy=strategy,
        concurrency=concurrency,
        wall_s=wall_s,
        max_bars=max_bars,
        x_max=x_max,
    )
    fig.savefig(path, dpi=DPI)
    return path
