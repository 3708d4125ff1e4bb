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
# (colour, lighter tint): consecutive calls in a lane alternate, so back-to-back calls stay apart.
STATUS_COLOURS: Final = {
    "ok": ("#1f77b4", "#7fb2da"),
    "retried": ("#ff7f0e", "#ffbb78"),
    "error": ("#d62728", "#f4a09f"),
}
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

    At equal times ends count before starts, as in ``assign_lanes``.
    """
    times = np.concatenate([ends, starts]).astype(np.float64)
    deltas = np.concatenate([-np.ones(len(ends), np.int64), np.ones(len(starts), np.int64)])
    order = np.lexsort((deltas, times))  # by time, then -1 before +1
    return times[order], np.cumsum(deltas[order])


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


def _colours(kinds: list[str], lanes: npt.NDArray[np.int64]) -> list[str]:
    """A status colour per call, its tint on every other call of the same lane (calls in start order)."""
    seen: dict[int, int] = {}
    colours = []
    for kind, lane in zip(kinds, lanes, strict=True):
        turn = seen.get(int(lane), 0)
        seen[int(lane)] = turn + 1
        colours.append(STATUS_COLOURS[kind][turn % 2])
    return colours


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
    fig = Figure(figsize=(11, 7), dpi=DPI)
    fig.subplots_adjust(left=0.07, right=0.845, bottom=0.075, top=0.89 if shown < len(cell) else 0.925, hspace=0.08)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    half = 0.4 if peak <= 40 else 0.5  # many lanes: no gap, or the bars vanish
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
    colours = _colours(kinds, lanes[:shown])
    edge = "white" if peak <= 40 and shown <= 400 else "none"
    top.add_collection(PolyCollection(list(verts), facecolors=colours, edgecolors=edge, linewidths=0.3))
    top.set_ylim(-0.6, max(peak, 1) - 0.4)
    top.set_ylabel(f"lane ({peak} used)")
    if peak <= 20:
        top.set_yticks(range(peak))
    top.legend(
        handles=[
            Patch(color=STATUS_COLOURS[kind][0], label=f"{LABELS[kind]} ({kinds.count(kind)})")
            for kind in STATUS_COLOURS
            if kind in kinds
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),  # outside: the lanes are full right up to the edge
        fontsize=8,
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
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
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
