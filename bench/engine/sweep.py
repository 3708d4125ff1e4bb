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

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench.core.calls import Call
from bench.engine.folder import execute, finalize
from bench.engine.loadtest import LoadTest, load_test
from bench.engine.options import RunOptions
from bench.engine.plan import RunPlan, is_open_loop
from bench.engine.runner import CellRunner, CellSpec
from bench.engine.session import RunHooks
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
    *,
    runner: CellRunner,
    run_dir: Path,
    calls: Sequence[Call],
    strategy: str,
    count: int,
    ceiling: int,
    per_level: int,
    max_in_flight: int = 1000,
    on_cell: Callable[[CellSpec], None] | None = None,
    refine: int = 6,
) -> pd.DataFrame:
    """Run the sweep; the summary of every cell, in the order they ran."""
    cells_run = 0

    async def cell(spec: CellSpec) -> pd.Series:
        nonlocal cells_run
        if on_cell is not None:
            on_cell(spec)
        await execute(RunPlan(label="sweep", cells=(spec,)), runner, run_dir, append=cells_run > 0)
        cells_run += 1
        summary, _ = finalize(run_dir, run_dir.name)
        return summary.iloc[-1]

    def calls_for(level: float) -> tuple[Call, ...]:
        want = cell_size(level, per_level)
        return tuple(calls[i % len(calls)] for i in range(want))

    open_loop = is_open_loop(strategy)
    closed = CLOSED_LOOP if open_loop else strategy
    scenario = "sweep-bounds" if open_loop else "sweep"
    floor = await cell(CellSpec(scenario=scenario, strategy=closed, concurrency=1, calls=calls_for(1)))
    top = await cell(CellSpec(scenario=scenario, strategy=closed, concurrency=ceiling, calls=calls_for(ceiling)))

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

    if open_loop:
        for rate in rate_levels(float(floor["throughput_rps"]), float(top["throughput_rps"]), count):
            await cell(level_cell(rate))
    else:
        done = {1, ceiling}
        for level in concurrency_levels(float(top["throughput_rps"]), float(floor["latency_p50_s"]), ceiling, count):
            if level not in done:
                done.add(level)
                await cell(level_cell(level))
    knob = "rate" if open_loop else "C"
    for _ in range(refine):
        summary, _ = finalize(run_dir, run_dir.name)
        mine = [cells for name, kind, cells in levels(summary) if name == strategy and kind == knob]
        found = refine_level(mine[0], whole=not open_loop) if mine else None
        if found is None:
            break
        await cell(level_cell(found))
    summary, _ = finalize(run_dir, run_dir.name)
    return summary


@dataclass(frozen=True, kw_only=True)
class SweepSettings:
    """What ``bench sweep`` adds to ``RunOptions``: the strategy, K levels, the ceiling cell's C, the refining cells."""

    strategy: str = "semaphore"
    levels: int = 5
    ceiling: int = 256
    refine: int = 6  # extra cells bisecting around the knee


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """A finished sweep: its folder and the summary of every cell, in the order they ran."""

    run_dir: Path
    summary: pd.DataFrame
    fatal: str | None  # why the runner stopped itself (401, 404…), if it did


def sweep_budget(settings: SweepSettings, per_level: int) -> int | None:
    """The most calls the sweep may send (None: open-loop rates are found as it runs, and so are their cells)."""
    if is_open_loop(settings.strategy):
        return (settings.levels + settings.refine + 2) * per_level if per_level else None
    return cell_size(1, per_level) + (settings.levels + settings.refine + 1) * cell_size(settings.ceiling, per_level)


def run_sweep(options: RunOptions, settings: SweepSettings, hooks: RunHooks | None = None) -> SweepResult:
    """Sweep ``settings.strategy`` into a new run folder (OptionsError: bad usage; RunError: cannot proceed)."""
    hooks = hooks or RunHooks()
    per_level = options.workload.calls or 0

    search = functools.partial(
        sweep_run, count=settings.levels, ceiling=settings.ceiling, refine=settings.refine, on_cell=hooks.on_cell
    )
    budget = sweep_budget(settings, per_level)
    test = LoadTest(kind="sweep", strategy=settings.strategy, budget=budget, settings=asdict(settings))
    done = load_test(options, test, search, hooks)
    return SweepResult(run_dir=done.run_dir, summary=done.summary, fatal=done.fatal)
