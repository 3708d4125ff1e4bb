"""The time-split figures of ``bench overhead``: warm pools, a small pool's queue, the hooks' own cost.

(g) with ``--warmup``, p99 of (latency − the server's injected delay) at a wide C, per client, and
whether any call still paid for a connection; (h) a pool smaller than C against a fixed-latency
server: the share of the excess latency ``pool_wait_s`` carries, and the end line; (i) the harness
with its hooks on ÷ the same with ``--no-trace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

import pandas as pd

from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import Call, calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.engine.runner import CellSpec, RunnerConfig
from bench.mock import MockConfig, MockServer
from bench.overhead.figures import MODEL, Figure
from bench.overhead.measure import harness_cell, median_cpu_us, median_rounds, percentile
from bench.report.breakdown import excess_share, verdicts

TARGET_GAP_MS: Final = {"aiohttp": 3.0, "openai": 25.0}


@dataclass(frozen=True, kw_only=True)
class TimingPlan:
    """Sizes of the time-split figures."""

    rounds: int = 3
    wide_calls: int = 1000
    wide_concurrency: int = 200
    wide_latency: str = "lognormal:1.0,0.5"
    clients: tuple[str, ...] = ("aiohttp", "openai")
    pool_calls: int = 300
    pool_concurrency: int = 50
    pool_size: int = 10
    pool_latency_s: float = 0.2
    hooks_calls: int = 2000
    hooks_concurrency: int = 50


async def traced_cell(
    base_url: str,
    calls: Sequence[Call],
    concurrency: int,
    client: str,
    *,
    warmup: bool = False,
    max_connections: int | None = None,
) -> pd.DataFrame:
    """One semaphore cell through the Runner, its rows kept in memory (every call must succeed)."""
    rows: list[CallRecord] = []
    runner = RunnerConfig(
        run_id="overhead-timing",
        endpoint=Endpoint(base_url=base_url, api_key="overhead", model=MODEL),
        settings=RequestSettings(max_retries=0, max_connections=max_connections),
        client=client,
        warmup=warmup,
    ).runner(stop=threading.Event(), emit=rows.append)
    await runner.run_cell(
        CellSpec(scenario="timing", strategy="semaphore", concurrency=concurrency, calls=tuple(calls))
    )
    failed = [row for row in rows if row.status != "ok"]
    if len(rows) != len(calls) or failed:
        raise RuntimeError(f"{client}: {len(rows)} rows, {len(failed)} failed; figures need clean runs")
    return pd.DataFrame([dataclasses.asdict(row) for row in rows])


def _gap_p99_ms(frame: pd.DataFrame) -> float:
    return percentile(list(frame["latency_s"] - frame["server_s"]), 99) * 1000


def measure_timing(plan: TimingPlan) -> list[Figure]:
    """Figures (g)–(i), each a median over ``plan.rounds`` interleaved rounds."""
    people = load_personas()
    wide = calls_for_count(people, plan.wide_calls)
    pooled = calls_for_count(people, plan.pool_calls)
    many = calls_for_count(people, plan.hooks_calls)
    frames: dict[str, list[pd.DataFrame]] = {}
    with contextlib.ExitStack() as stack:
        spread = stack.enter_context(MockServer(MockConfig(latency=plan.wide_latency))).base_url
        fixed = stack.enter_context(MockServer(MockConfig(latency=f"fixed:{plan.pool_latency_s}"))).base_url
        zero = stack.enter_context(MockServer(MockConfig(latency="zero"))).base_url
        jobs = {}
        for client in plan.clients:
            for warm in (False, True):
                jobs[f"{client}-{warm}"] = partial(
                    traced_cell, spread, wide, plan.wide_concurrency, client, warmup=warm
                )
        jobs["pool"] = partial(
            traced_cell, fixed, pooled, plan.pool_concurrency, "aiohttp", max_connections=plan.pool_size
        )

        async def collect(name: str) -> None:
            frames.setdefault(name, []).append(await jobs[name]())

        async def all_rounds() -> None:
            for _ in range(plan.rounds):
                for name in jobs:
                    await collect(name)

        asyncio.run(all_rounds())
        settings = {on: RequestSettings(max_retries=0, trace=on) for on in (True, False)}
        hooks_on, hooks_off = median_rounds(
            plan.rounds,
            partial(harness_cell, zero, many, "semaphore", plan.hooks_concurrency, MODEL, settings=settings[True]),
            partial(harness_cell, zero, many, "semaphore", plan.hooks_concurrency, MODEL, settings=settings[False]),
        )
    figures: list[Figure] = []
    setup = f"N={plan.wide_calls} C={plan.wide_concurrency} {plan.wide_latency}"
    for client in plan.clients:
        cold, warmed = frames[f"{client}-False"], frames[f"{client}-True"]
        connected = max(int((frame["connect_s"] > 0).sum()) for frame in warmed)
        figures.append(
            Figure(
                key="g",
                what=f"latency − server delay, p99, --warmup, {client}",
                setup=setup,
                value=statistics.median(_gap_p99_ms(frame) for frame in warmed),
                unit="ms",
                op="≤",
                target=TARGET_GAP_MS.get(client),
                detail=f"without --warmup {statistics.median(_gap_p99_ms(f) for f in cold):.1f} ms; "
                f"calls with connect_s > 0: {connected} (without: "
                f"{statistics.median(int((f['connect_s'] > 0).sum()) for f in cold):.0f})",
            )
        )
    pool = frames["pool"]
    lines = verdicts(pool[-1])
    figures.append(
        Figure(
            key="h",
            what="pool_wait_s share of latency beyond the server's delay, aiohttp",
            setup=f"N={plan.pool_calls} C={plan.pool_concurrency} pool {plan.pool_size} L={plan.pool_latency_s:g}",
            value=statistics.median(100 * excess_share(frame, "pool_wait_s") for frame in pool),
            unit="%",
            op="≥",
            target=90.0,
            detail=lines[0] if lines else "no end line",
        )
    )
    on_rps = statistics.median(m.rps for m in hooks_on)
    off_rps = statistics.median(m.rps for m in hooks_off)
    figures.append(
        Figure(
            key="i",
            what="harness (openai) with its timing hooks ÷ --no-trace, req/s",
            setup=f"N={plan.hooks_calls} C={plan.hooks_concurrency} L=0",
            value=statistics.median(a.rps / b.rps for a, b in zip(hooks_on, hooks_off, strict=True)),
            unit="×",
            op="≥",
            target=0.95,
            detail=f"{on_rps:.0f} vs {off_rps:.0f} req/s; CPU/call {median_cpu_us(hooks_on):.0f} vs "
            f"{median_cpu_us(hooks_off):.0f} µs",
        )
    )
    return figures
