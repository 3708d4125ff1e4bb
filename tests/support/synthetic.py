"""Synthetic run folders for report/plot tests: schedules simulated from given latencies, no network."""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.records import CALLS_FILE, CELLS_FILE, CallRecord, CallsWriter
from bench.engine.folder import finalize
from strategies import STRATEGIES


@dataclass(frozen=True, kw_only=True)
class Cell:
    scenario: str
    strategy: str
    concurrency: int
    latencies: tuple[float, ...]
    failed: frozenset[int] = frozenset()  # indexes of calls that end in error
    retried: frozenset[int] = frozenset()  # indexes of calls that needed a second attempt
    overhead_s: float = 0.01  # wall time beyond the last call's end


def schedule(strategy: str, concurrency: int, latencies: Sequence[float]) -> list[tuple[float, float]]:
    """(start, end) per call as the strategy would issue them with zero overhead."""
    if strategy == "sequential":
        concurrency = 1
    if strategy == "gather":
        concurrency = len(latencies)
    times: list[tuple[float, float]] = []
    if strategy == "batched":
        at = 0.0
        for first in range(0, len(latencies), concurrency):
            batch = latencies[first : first + concurrency]
            times += [(at, at + latency) for latency in batch]
            at += max(batch)
        return times
    # A sliding window: each call starts when the earliest running one ends.
    running: list[float] = []
    for latency in latencies:
        start = heapq.heappop(running) if len(running) >= concurrency else 0.0
        heapq.heappush(running, start + latency)
        times.append((start, start + latency))
    return times


def records(cell: Cell, run_id: str = "synthetic") -> list[CallRecord]:
    rows = []
    for index, ((start, end), latency) in enumerate(
        zip(schedule(cell.strategy, cell.concurrency, cell.latencies), cell.latencies, strict=True)
    ):
        failed = index in cell.failed
        rows.append(
            CallRecord(
                run_id=run_id,
                strategy=cell.strategy,
                concurrency=cell.concurrency,
                call_id=f"p{index:05d}-r0",
                persona_id=index,
                repeat=0,
                scheduled_s=start,
                start_s=start,
                end_s=end,
                latency_s=latency,
                status="error" if failed else "ok",
                http_status=500 if failed else 200,
                error="InternalServerError" if failed else "",
                attempts=2 if index in cell.retried else 1,
                prompt_tokens=None if failed else 120,
                completion_tokens=None if failed else 12,
                answer="" if failed else ("Harris" if index % 3 else "Trump"),
                scenario=cell.scenario,
            )
        )
    # Rows reach calls.csv in the order calls finish, as the runner writes them.
    return sorted(rows, key=lambda r: r.end_s)


def lognormal(n: int, seed: int, mean: float = 0.2, sigma: float = 0.3) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(float(x) for x in rng.lognormal(np.log(mean), sigma, n))


def write_run(run_dir: Path, cells: Sequence[Cell], run_id: str = "synthetic") -> Path:
    """A finished run folder: calls.csv, cells.jsonl, summary.csv, tally.csv."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with CallsWriter(run_dir / CALLS_FILE) as writer, (run_dir / CELLS_FILE).open("w") as metas:
        for cell in cells:
            rows = records(cell, run_id)
            for row in rows:
                writer.write(row)
            wall = max((r.end_s for r in rows), default=0.0) + cell.overhead_s
            starts = [r.start_s for r in rows]
            peak = max((len([r for r in rows if r.start_s <= t < r.end_s]) for t in starts), default=0)
            meta = {
                "scenario": cell.scenario,
                "strategy": cell.strategy,
                "concurrency": cell.concurrency,
                "calls": len(rows),
                "sent": len(rows),
                "wall_s": wall,
                "max_in_flight": peak,
                "rpm": None,
                "tpm": None,
                "ideal": STRATEGIES[cell.strategy].traits.ideal,
            }
            metas.write(json.dumps(meta) + "\n")
    finalize(run_dir, run_id)
    return run_dir


def sweep_cells(scenario: str = "main", n: int = 60, levels: Sequence[int] = (1, 4, 16)) -> list[Cell]:
    """Every strategy shape a matrix run has: sequential, gather, and windows/batches at ``levels``."""
    cells = [Cell(scenario=scenario, strategy="sequential", concurrency=1, latencies=lognormal(n, 1))]
    for strategy in ("semaphore", "batched"):
        cells += [
            Cell(scenario=scenario, strategy=strategy, concurrency=c, latencies=lognormal(n, 10 + c)) for c in levels
        ]
    cells.append(
        Cell(
            scenario=scenario,
            strategy="gather",
            concurrency=n,
            latencies=lognormal(n, 99),
            failed=frozenset({3}),
        )
    )
    return cells


def talk_cells() -> list[Cell]:
    """The default run's shape: one cell per strategy, two scenarios, one without a sequential cell."""
    return [
        Cell(scenario="ten-asks", strategy="sequential", concurrency=1, latencies=lognormal(10, 2, 2.6, 0.25)),
        Cell(scenario="ten-asks", strategy="gather", concurrency=10, latencies=lognormal(10, 3, 2.6, 0.25)),
        Cell(
            scenario="personas-200",
            strategy="batched",
            concurrency=100,
            latencies=lognormal(200, 4, 2.6, 0.25),
            retried=frozenset({5, 6}),
        ),
        Cell(
            scenario="personas-200",
            strategy="semaphore",
            concurrency=100,
            latencies=lognormal(200, 5, 2.6, 0.25),
        ),
    ]
