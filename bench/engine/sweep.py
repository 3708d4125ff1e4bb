"""``bench sweep``: a floor cell, a ceiling cell, then K levels between, into one run folder.

The floor (C = 1) gives the unloaded latency L; the ceiling (C = ``ceiling``) the most goodput
G the endpoint gives. Little's law puts saturation near C ≈ G·L, so the K concurrency levels
are spread geometrically from 1 to twice that; for open-loop strategies the K rates are spread
evenly from the floor's goodput to 1.2 G. The knee is found in the summary (``bench.report.knee``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from bench.engine.folder import execute, finalize
from bench.engine.plan import RunPlan, is_open_loop
from bench.engine.runner import CellSpec, Runner
from bench.workload import Call

CLOSED_LOOP = "semaphore"  # floor and ceiling: a sliding window, the fairest closed loop


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


async def sweep_run(
    *,
    runner: Runner,
    run_dir: Path,
    calls: Sequence[Call],
    strategy: str,
    count: int,
    ceiling: int,
    per_level: int,
    max_in_flight: int = 1000,
    on_cell: Callable[[CellSpec], None] | None = None,
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
        want = per_level or max(40, math.ceil(4 * level))
        return tuple(calls[i % len(calls)] for i in range(want))

    open_loop = is_open_loop(strategy)
    closed = CLOSED_LOOP if open_loop else strategy
    scenario = "sweep-bounds" if open_loop else "sweep"
    floor = await cell(CellSpec(scenario=scenario, strategy=closed, concurrency=1, calls=calls_for(1)))
    top = await cell(CellSpec(scenario=scenario, strategy=closed, concurrency=ceiling, calls=calls_for(ceiling)))
    if open_loop:
        for rate in rate_levels(float(floor["throughput_rps"]), float(top["throughput_rps"]), count):
            await cell(
                CellSpec(
                    scenario=f"rate-{rate:g}",
                    strategy=strategy,
                    concurrency=max_in_flight,
                    calls=calls_for(rate),
                    rate=rate,
                )
            )
    else:
        done = {1, ceiling}
        for level in concurrency_levels(float(top["throughput_rps"]), float(floor["latency_p50_s"]), ceiling, count):
            if level not in done:
                done.add(level)
                await cell(CellSpec(scenario=scenario, strategy=strategy, concurrency=level, calls=calls_for(level)))
    summary, _ = finalize(run_dir, run_dir.name)
    return summary
