"""``bench overhead --per-call``: what the harness costs a call, next to bare loops sending the same requests.

(a) the SDK path ÷ a bare ``AsyncOpenAI`` loop and (b) ``--client aiohttp`` ÷ a bare aiohttp loop, both at
zero latency and C = 64, where the client process is the bottleneck; (b) again with ``--no-trace`` (what the
time split costs) and ÷ a bare aiohttp loop that also writes each call's calls.csv row (what the harness costs
beyond keeping the rows); (j) the SDK path with its default hooks (the time split) ÷ the bare SDK loop at 0.2 s
latency, 1,000 calls, C = 100; (k) TTFT p50 and p99
of the harness and of a bare aiohttp loop (its own process) streaming the same calls at the same time
from a mock with a TTFT model. Every figure is the median over interleaved rounds, with the spread
(lowest–highest round) and the CPU per call (process time: it moves less than wall time on a shared
machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import Call, calls_for_count, load_personas
from bench.core.loops import Loop
from bench.core.loops import run as run_on_loop
from bench.core.records import CallRecord
from bench.engine.runner import CellSpec, RunnerConfig
from bench.mock import MockConfig, MockServer
from bench.overhead.figures import MODEL, Figure
from bench.overhead.measure import (
    Measurement,
    bare_aiohttp_loop,
    bare_aiohttp_rows_loop,
    bare_openai_loop,
    harness_cell,
    median_cpu_us,
    percentile,
)

TTFT_TARGET: Final = 1.10  # the harness's TTFT p99 within 10 % of the bare client's


@dataclass(frozen=True, kw_only=True)
class PerCallPlan:
    """Sizes of the per-call figures."""

    rounds: int = 5
    loop: Loop = "asyncio"
    zero_calls: int = 2000  # SDK calls at zero latency; the aiohttp cells send five times as many
    zero_concurrency: int = 64
    sched_calls: int = 1000
    sched_concurrency: int = 100
    sched_latency_s: float = 0.2
    ttft_calls: int = 320
    ttft_concurrency: int = 32
    ttft: str = "lognormal:0.3,0.3"
    itl: str = "fixed:0.02"
    output_tokens: str = "fixed:30"
    # (harness client, bare loop beside it): the SDK beside aiohttp shows the SDK's own cost per chunk
    ttft_pairs: tuple[tuple[str, str], ...] = (("openai", "aiohttp"), ("aiohttp", "aiohttp"), ("openai", "openai"))


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median (lowest–highest)`` of the rounds' values."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _paired(top: Sequence[Measurement], bottom: Sequence[Measurement]) -> list[float]:
    return [t.rps / b.rps for t, b in zip(top, bottom, strict=True)]


def _ratio_figure(
    key: str, what: str, setup: str, top: list[Measurement], bottom: list[Measurement], target: float | None
) -> Figure:
    ratios = _paired(top, bottom)
    cpu_top, cpu_bottom = median_cpu_us(top), median_cpu_us(bottom)
    return Figure(
        key=key,
        what=what,
        setup=setup,
        value=statistics.median(ratios),
        unit="×",
        op="≥" if target is not None else "",
        target=target,
        detail=f"rounds {len(ratios)}: {spread(ratios)} [{', '.join(f'{r:.2f}' for r in ratios)}]; "
        f"{statistics.median(m.rps for m in top):.0f} vs {statistics.median(m.rps for m in bottom):.0f} req/s; "
        f"CPU/call {cpu_top:.0f} vs {cpu_bottom:.0f} µs ({cpu_top / cpu_bottom:.2f}×)",
    )


@dataclass(frozen=True, kw_only=True)
class Streamed:
    """One streamed cell through the harness: each call's TTFT, the CPU per content chunk, the loop's lag."""

    ttfts: list[float]
    cpu_per_chunk_us: float  # the cell's CPU (this process) ÷ the content chunks it read
    lag_p99_ms: float  # how late a 5 ms sleep in the same event loop woke, p99 over the cell


async def _lags(stop: asyncio.Event, lags: list[float], period: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time() + period
        await asyncio.sleep(period)
        lags.append(loop.time() - asked)


async def harness_ttfts(base_url: str, calls: Sequence[Call], concurrency: int, client: str) -> Streamed:
    """One streamed semaphore cell through the Runner (rows kept in memory), its event loop watched."""
    rows: list[CallRecord] = []
    runner = RunnerConfig(
        run_id="overhead-ttft",
        endpoint=Endpoint(base_url=base_url, api_key="overhead", model=MODEL),
        settings=RequestSettings(max_retries=0, stream=True),
        client=client,
    ).runner(stop=threading.Event(), emit=rows.append)
    spec = CellSpec(scenario="ttft", strategy="semaphore", concurrency=concurrency, calls=tuple(calls))
    stop, lags = asyncio.Event(), list[float]()
    watcher = asyncio.ensure_future(_lags(stop, lags))
    cpu = time.process_time()
    await runner.run_cell(spec)
    cpu = time.process_time() - cpu
    stop.set()
    await watcher
    failed = [row for row in rows if row.status != "ok" or row.ttft_s is None]
    if len(rows) != len(calls) or failed:
        raise RuntimeError(f"{client}: {len(rows)} rows, {len(failed)} without a TTFT; figures need clean runs")
    chunks = sum(row.output_tokens or 0 for row in rows) or 1
    return Streamed(
        ttfts=[row.ttft_s for row in rows if row.ttft_s is not None],
        cpu_per_chunk_us=cpu / chunks * 1e6,
        lag_p99_ms=percentile(lags, 99) * 1000,
    )


async def side_by_side(
    base_url: str, calls: Sequence[Call], concurrency: int, client: str, bare: str = "aiohttp"
) -> tuple[Streamed, list[float]]:
    """(the harness's cell, bare TTFTs): the harness here, a bare ``bare`` loop (aiohttp or openai) in its own
    process, started together."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.overhead.bare_stream",
        base_url,
        str(concurrency),
        MODEL,
        bare,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        for call in calls:
            item = {"call_id": call.call_id, "persona_id": call.persona_id, "repeat": call.repeat}
            process.stdin.write((json.dumps({**item, "messages": list(call.messages)}) + "\n").encode())
        process.stdin.write(b"\n")
        await process.stdin.drain()
        if (await process.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the bare streaming loop did not start")
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        harness = await harness_ttfts(base_url, calls, concurrency, client)
        timed = json.loads(await process.stdout.readline())["ttft_s"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    if len(timed) != len(calls):
        raise RuntimeError(f"the bare streaming loop timed {len(timed)} of {len(calls)} calls")
    return harness, timed


def measure_per_call(plan: PerCallPlan) -> list[Figure]:
    """Figures (a), (b), (j), (k), each a median over ``plan.rounds`` interleaved rounds."""
    people = load_personas()
    zero_calls = calls_for_count(people, plan.zero_calls)
    many = calls_for_count(people, plan.zero_calls * 5)
    sched = calls_for_count(people, plan.sched_calls)
    streamed = calls_for_count(people, plan.ttft_calls)
    c0, cs = plan.zero_concurrency, plan.sched_concurrency
    sdk, no_trace = RequestSettings(max_retries=0), RequestSettings(max_retries=0, trace=False)
    results: dict[str, list[Measurement]] = {}
    ttfts: dict[str, list[tuple[Streamed, list[float]]]] = {}
    with contextlib.ExitStack() as stack:
        zero = stack.enter_context(MockServer(MockConfig(latency="zero"))).base_url
        fixed = stack.enter_context(MockServer(MockConfig(latency=f"fixed:{plan.sched_latency_s}"))).base_url
        tokens = MockConfig(latency="zero", ttft=plan.ttft, itl=plan.itl, output_tokens=plan.output_tokens)
        streaming = stack.enter_context(MockServer(tokens)).base_url
        makers: dict[str, Callable[[], Awaitable[Measurement]]] = {
            "bare-openai": partial(bare_openai_loop, zero, zero_calls, c0, MODEL),
            "harness-openai": partial(harness_cell, zero, zero_calls, "semaphore", c0, MODEL, "openai", sdk),
            "bare-aiohttp": partial(bare_aiohttp_loop, zero, many, c0, MODEL),
            "harness-aiohttp": partial(harness_cell, zero, many, "semaphore", c0, MODEL, "aiohttp", sdk),
            "harness-aiohttp-no-trace": partial(harness_cell, zero, many, "semaphore", c0, MODEL, "aiohttp", no_trace),
            "bare-aiohttp-rows": partial(bare_aiohttp_rows_loop, zero, many, c0, MODEL),
            "sched-bare": partial(bare_openai_loop, fixed, sched, cs, MODEL),
            "sched-hooks": partial(harness_cell, fixed, sched, "semaphore", cs, MODEL, "openai", sdk),
            "sched-no-trace": partial(harness_cell, fixed, sched, "semaphore", cs, MODEL, "openai", no_trace),
        }

        async def all_rounds() -> None:
            for _ in range(plan.rounds):
                for name, make in makers.items():
                    results.setdefault(name, []).append(await make())
                for client, bare in plan.ttft_pairs:
                    pair = await side_by_side(streaming, streamed, plan.ttft_concurrency, client, bare)
                    ttfts.setdefault(f"{client}|{bare}", []).append(pair)

        run_on_loop(all_rounds(), loop=plan.loop)
    r = results
    at = f"N={plan.zero_calls} C={c0} L=0"
    figures = [
        _ratio_figure(
            "a", "harness (openai) ÷ bare AsyncOpenAI loop, req/s", at, r["harness-openai"], r["bare-openai"], 0.9
        ),
        _ratio_figure(
            "b",
            "harness (aiohttp) ÷ bare aiohttp loop, req/s",
            f"N={plan.zero_calls * 5} C={c0} L=0",
            r["harness-aiohttp"],
            r["bare-aiohttp"],
            0.9,
        ),
        _ratio_figure(
            "b",
            "  the same with --no-trace (no time split)",
            "same rounds",
            r["harness-aiohttp-no-trace"],
            r["bare-aiohttp"],
            None,  # the default path is the one with a target: this says what the time split costs of (b)'s gap
        ),
        _ratio_figure(
            "b",
            "  the same ÷ a bare aiohttp loop writing the same rows",
            "same rounds",
            r["harness-aiohttp"],
            r["bare-aiohttp-rows"],
            None,  # no target of its own: it says how much of (b)'s gap is the rows themselves
        ),
        _ratio_figure(
            "j",
            "harness (openai, default hooks) ÷ bare AsyncOpenAI loop, req/s",
            f"N={plan.sched_calls} C={cs} L={plan.sched_latency_s:g}",
            r["sched-hooks"],
            r["sched-bare"],
            0.95,
        ),
    ]
    figures.append(
        _ratio_figure("j", "  the same with --no-trace", "same rounds", r["sched-no-trace"], r["sched-bare"], 0.95)
    )
    setup = f"N={plan.ttft_calls} C={plan.ttft_concurrency} ttft {plan.ttft}, itl {plan.itl}"
    bare_names = {"aiohttp": "a bare aiohttp loop", "openai": "a bare AsyncOpenAI loop"}
    for names, pairs in ttfts.items():
        client, bare = names.split("|")
        p99 = [percentile(h.ttfts, 99) / percentile(b, 99) for h, b in pairs]
        ms = {q: [(percentile(h.ttfts, q) * 1000, percentile(b, q) * 1000) for h, b in pairs] for q in (50, 99)}
        shown = "; ".join(
            f"p{q} {statistics.median(h for h, _ in v):.0f} vs {statistics.median(b for _, b in v):.0f} ms"
            for q, v in ms.items()
        )
        figures.append(
            Figure(
                key="k",
                what=f"TTFT p99, harness ({client}) ÷ {bare_names[bare]} streaming beside it",
                setup=setup,
                value=statistics.median(p99),
                unit="×",
                op="≤",
                target=TTFT_TARGET,
                detail=f"rounds {len(p99)}: {spread(p99)}; {shown}; harness CPU/chunk "
                f"{statistics.median(h.cpu_per_chunk_us for h, _ in pairs):.0f} µs, its loop's lag p99 "
                f"{statistics.median(h.lag_p99_ms for h, _ in pairs):.0f} ms",
            )
        )
    return figures
