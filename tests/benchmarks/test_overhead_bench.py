"""Strategies × concurrency through the whole harness (Runner, client, rows) against the mock.

pytest-benchmark times one cell per round (a sync wrapper around ``asyncio.run``: it has no
async support); ``extra_info`` keeps the figures a reader wants next to the timing: wall,
throughput, p99 latency, the ideal wall time and wall ÷ ideal. The mock's latency is fixed, so
the ideal is exact: ⌈N/C⌉·L for windows and batches, N·L for sequential (which gets N/4 calls),
L for gather, and for rate_limited at least (N−1)·60/R + L. Sizes are small so the default test
command runs them for real in seconds; for steadier figures raise them, e.g.
``BENCH_CALLS=400 BENCH_LATENCY_S=0.05 BENCH_ROUNDS=5 pytest tests/benchmarks -n 0 -k strategy_cell``.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import Call, calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.engine.runner import CellMeta, CellSpec, Runner
from bench.mock import MockConfig, MockServer
from bench.overhead.measure import percentile

pytestmark = pytest.mark.slow  # benchmarks: figures, not the fast tier

CALLS = int(os.environ.get("BENCH_CALLS", "48"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
LATENCY_S = float(os.environ.get("BENCH_LATENCY_S", "0.01"))
RPM = 12_000.0  # binds: 48 calls at 200/s take ~0.24 s, more than the window needs
LEVELS = (4, 16)
WORKLOAD = tuple(calls_for_count(load_personas(), CALLS))

CELLS = [
    pytest.param("sequential", 1, "openai", id="sequential-1"),
    pytest.param("gather", CALLS, "openai", id=f"gather-{CALLS}"),
    *(
        pytest.param(strategy, level, "openai", id=f"{strategy}-{level}")
        for strategy in ("threads", "semaphore", "workers", "batched")
        for level in LEVELS
    ),
    pytest.param("rate_limited", LEVELS[-1], "openai", id=f"rate_limited-{LEVELS[-1]}"),
    pytest.param("semaphore", LEVELS[-1], "aiohttp", id=f"semaphore-{LEVELS[-1]}-aiohttp"),
    pytest.param("threads", LEVELS[-1], "httpx", id=f"threads-{LEVELS[-1]}-httpx"),
]


@pytest.fixture(scope="module")
def bench_mock() -> Iterator[MockServer]:
    """One mock at fixed ``LATENCY_S`` for every cell (its stats are reset per cell)."""
    with MockServer(MockConfig(latency=f"fixed:{LATENCY_S}", seed=0)) as server:
        yield server


@dataclass(frozen=True, kw_only=True)
class CellRun:
    meta: CellMeta
    records: tuple[CallRecord, ...]


def ideal_wall_s(strategy: str, calls: int, concurrency: int, latency_s: float) -> float:
    """The wall time no scheduler can beat at a fixed latency."""
    if strategy == "sequential":
        return calls * latency_s
    waves = math.ceil(calls / concurrency) * latency_s
    if strategy == "rate_limited":
        return max(waves, (calls - 1) * 60.0 / RPM + latency_s)
    return waves


def workload(strategy: str) -> tuple[Call, ...]:
    """The calls of a cell: a quarter of them for sequential, which pays every latency in turn."""
    return WORKLOAD[: max(1, CALLS // 4)] if strategy == "sequential" else WORKLOAD


async def run_cell(
    server: MockServer, strategy: str, concurrency: int, client: str, calls: tuple[Call, ...]
) -> CellRun:
    records: list[CallRecord] = []
    runner = Runner(
        run_id="bench",
        endpoint=Endpoint(base_url=server.base_url, api_key="bench-key"),
        settings=RequestSettings(max_retries=0, timeout_s=30),
        emit=records.append,
        probe=server,
        **CLIENTS[client].runner_factories(),
    )
    rpm = RPM if strategy == "rate_limited" else None
    spec = CellSpec(scenario="bench", strategy=strategy, concurrency=concurrency, calls=calls, rpm=rpm)
    meta = await runner.run_cell(spec)
    return CellRun(meta=meta, records=tuple(records))


@pytest.mark.parametrize(("strategy", "concurrency", "client"), CELLS)
def test_strategy_cell(benchmark: Any, bench_mock: MockServer, strategy: str, concurrency: int, client: str) -> None:
    calls = workload(strategy)
    n = len(calls)
    runs: list[CellRun] = []

    def one_cell() -> int:
        runs.append(asyncio.run(run_cell(bench_mock, strategy, concurrency, client, calls)))
        return len(runs[-1].records)

    rows = benchmark.pedantic(one_cell, rounds=ROUNDS, warmup_rounds=1)
    assert rows == n
    latency_s = bench_mock.config.latency_model().mean
    ideal = ideal_wall_s(strategy, n, concurrency, latency_s)
    bound = n if strategy == "gather" else concurrency
    for run in runs:
        assert len(run.records) == n
        assert {r.status for r in run.records} == {"ok"}
        assert run.meta.server is not None
        assert run.meta.server.status_counts == {"200": n}
        assert 1 <= run.meta.server.peak_in_flight <= bound
        assert run.meta.wall_s >= 0.98 * ideal  # a faster cell would mean the timing is wrong
    timed = runs[1:] or runs  # the first was the warm-up round (under xdist: one untimed round, no warm-up)
    wall = statistics.median(run.meta.wall_s for run in timed)
    benchmark.extra_info.update(
        client=client,
        calls=n,
        latency_s=latency_s,
        wall_s=round(wall, 4),
        throughput_rps=round(n / wall, 1),
        ideal_s=round(ideal, 4),
        ratio=round(wall / ideal, 3),
        latency_p99_s=round(statistics.median(percentile([r.latency_s for r in run.records], 99) for run in timed), 4),
        server_peak_in_flight=max(run.meta.server.peak_in_flight for run in timed if run.meta.server),
    )
