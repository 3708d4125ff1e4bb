"""``bench sweep``: a floor cell, a ceiling cell, then K levels between, into one run folder.

The floor (C = 1) gives the unloaded latency L; the ceiling (C = ``ceiling``) the most goodput
G the endpoint gives. Little's law puts saturation near C ≈ G·L, so the K concurrency levels
are spread geometrically from 1 to twice that; for open-loop strategies the K rates are spread
evenly from the floor's goodput to 1.2 G. The knee is found in the summary (``bench.report.knee``).
Geometric levels skip the slot count (1, 2, 5, 13, 30 on 16 slots), so up to ``refine`` more
cells then bisect around the knee: the step into it when goodput grew less than the level did
and p99 grew (saturation may lie inside), else the step above it, until the knee's neighbours are one C (or
5 % of the rate) apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench.core.calls import Call
from bench.engine.loadtest import load_test, resumed
from bench.engine.options import RunOptions
from bench.engine.plan import is_open_loop
from bench.engine.program import Cells
from bench.engine.runner import CellSpec
from bench.engine.schema import DEFAULT_MAX_IN_FLIGHT, DEFAULT_STRATEGY
from bench.engine.session import RunHooks, RunResult
from bench.report.knee import hides_saturation, knee_index, levels

CLOSED_LOOP = "semaphore"  # floor and ceiling: a sliding window, the fairest closed loop
FINEST_RATE_STEP = 0.05  # rates closer than this (relative) are not split further


def concurrency_levels(goodput: float, latency_s: float, ceiling: int, count: int) -> list[int]:
    """``count`` levels from 1 to 2·G·L (at most ``ceiling``), geometric, without repeats."""
    top = max(2.0, min(float(ceiling), 2.0 * goodput * latency_s))
    found = sorted({max(1, round(top ** (i / max(1, count - 1)))) for i in range(count)})
    return found


def rate_levels(floor_rps: float, ceiling_rps: float, count: int) -> list[float]:
    """``count`` rates evenly from the floor's goodput to 1.2 × the ceiling's (3 significant digits)."""
    low, high = max(floor_rps, 0.1), max(1.2 * ceiling_rps, floor_rps * 2)
    step = (high - low) / max(1, count - 1)
    return [float(f"{low + i * step:.3g}") for i in range(count)]


def between(low: float, high: float, *, whole: bool) -> float | None:
    """The geometric middle of two levels (an integer C when ``whole``); None when none fits between."""
    middle = math.sqrt(low * high)
    if whole:
        level = float(min(max(round(middle), low + 1), high - 1))
    elif high / low > 1 + FINEST_RATE_STEP:
        level = float(f"{middle:.3g}")
    else:
        return None
    return level if low < level < high else None


def refine_level(cells: pd.DataFrame, *, whole: bool) -> float | None:
    """The level to run next so the knee lands on the saturation point; None when it is pinned.

    ``cells`` are one strategy's levels in order (``bench.report.knee.levels``).
    """
    at = knee_index(cells)
    level = cells["level"]
    gaps = []
    if at > 0 and hides_saturation(cells.iloc[at - 1], cells.iloc[at]):
        gaps.append((float(level.iloc[at - 1]), float(level.iloc[at])))
    if at + 1 < len(cells):
        gaps.append((float(level.iloc[at]), float(level.iloc[at + 1])))
    for low, high in gaps:
        found = between(low, high, whole=whole)
        if found is not None:
            return found
    return None


def cell_size(level: float, per_level: int) -> int:
    """Calls in a level's cell: ``per_level``, else 4 per slot (or per arrival a second), at least 40."""
    return per_level or max(40, math.ceil(4 * level))


async def sweep_run(
    cells: Cells,
    calls: Sequence[Call],
    *,
    strategy: str,
    count: int,
    ceiling: int,
    per_level: int,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    refine: int = 6,
) -> pd.DataFrame:
    """Run the sweep; the summary of every cell (what ran before an interrupt, when interrupted)."""

    async def cell(spec: CellSpec) -> pd.Series:
        if cells.stopping:
            raise _Stopped
        await cells.run(spec)
        return cells.row(spec)

    def calls_for(level: float) -> tuple[Call, ...]:
        want = cell_size(level, per_level)
        return tuple(calls[i % len(calls)] for i in range(want))

    open_loop = is_open_loop(strategy)
    closed = CLOSED_LOOP if open_loop else strategy
    scenario = "sweep-bounds" if open_loop else "sweep"

    def level_cell(level: float) -> CellSpec:
        if open_loop:
            return CellSpec(
                scenario=f"rate-{level:g}",
                strategy=strategy,
                concurrency=max_in_flight,
                calls=calls_for(level),
                rate=level,
            )
        return CellSpec(scenario=scenario, strategy=strategy, concurrency=int(level), calls=calls_for(level))

    try:
        floor = await cell(CellSpec(scenario=scenario, strategy=closed, concurrency=1, calls=calls_for(1)))
        top = await cell(CellSpec(scenario=scenario, strategy=closed, concurrency=ceiling, calls=calls_for(ceiling)))
        if open_loop:
            for rate in rate_levels(_number(floor, "throughput_rps"), _number(top, "throughput_rps"), count):
                await cell(level_cell(rate))
        else:
            done = {1, ceiling}
            goodput, latency = _number(top, "throughput_rps"), _number(floor, "latency_p50_s")
            for level in concurrency_levels(goodput, latency, ceiling, count):
                if level not in done:
                    done.add(level)
                    await cell(level_cell(level))
        knob = "rate" if open_loop else "C"
        for _ in range(refine):
            mine = [found for name, kind, found in levels(cells.summary()) if name == strategy and kind == knob]
            next_level = refine_level(mine[0], whole=not open_loop) if mine else None
            if next_level is None:
                break
            await cell(level_cell(next_level))
    except _Stopped:
        pass
    return cells.summary()


class _Stopped(Exception):
    """The session is stopping: the search ends with what it has."""


def _number(row: pd.Series, column: str) -> float:
    value = row.get(column)
    try:
        number = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0  # NaN: nothing measured


@dataclass(frozen=True, kw_only=True)
class SweepSettings:
    """What ``bench sweep`` adds to ``RunOptions``: the strategy, K levels, the ceiling cell's C, the refining cells."""

    strategy: str = DEFAULT_STRATEGY
    levels: int = 5
    ceiling: int = 256
    refine: int = 6  # extra cells bisecting around the knee


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """A finished sweep: its folder and the summary of every cell, in the order they ran."""

    run_dir: Path
    summary: pd.DataFrame
    fatal: str | None  # why the runner stopped itself (401, 404…), if it did
    run: RunResult  # the session's own result: verdicts, interrupted, no_success


def sweep_budget(settings: SweepSettings, per_level: int) -> int | None:
    """The most calls the sweep may send (None: open-loop rates are found as it runs, and so are their cells)."""
    if is_open_loop(settings.strategy):
        return (settings.levels + settings.refine + 2) * per_level if per_level else None
    return cell_size(1, per_level) + (settings.levels + settings.refine + 1) * cell_size(settings.ceiling, per_level)


def run_sweep(options: RunOptions, settings: SweepSettings, hooks: RunHooks | None = None) -> SweepResult:
    """Sweep ``settings.strategy`` into a run folder (OptionsError: bad usage; RunError: cannot proceed)."""
    options, stored = resumed(options, "sweep")
    if stored is not None:
        settings = SweepSettings(**stored)
    per_level = options.workload.calls or 0

    async def search(cells: Cells, calls: Sequence[Call]) -> pd.DataFrame:
        return await sweep_run(
            cells,
            calls,
            strategy=settings.strategy,
            count=settings.levels,
            ceiling=settings.ceiling,
            per_level=per_level,
            max_in_flight=options.workload.max_in_flight,
            refine=settings.refine,
        )

    result, _ = load_test(
        options,
        kind="sweep",
        strategy=settings.strategy,
        budget=sweep_budget(settings, per_level),
        settings=asdict(settings),
        search=search,
        hooks=hooks,
    )
    return SweepResult(run_dir=result.run_dir, summary=result.summary, fatal=result.fatal, run=result)
