"""Is the harness the bottleneck? Compare it with bare client loops and with the ideal bound.

Each measurement runs against the same mock server, in the same process, one after another;
callers repeat them in rounds and keep medians (2-core machines are noisy).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai

from bench.client import Endpoint, RequestSettings
from bench.records import CallsWriter
from bench.runner import CellSpec, Runner
from bench.workload import MAX_TOKENS, Call


@dataclass(frozen=True, kw_only=True)
class Measurement:
    name: str
    calls: int
    wall_s: float

    @property
    def rps(self) -> float:
        return self.calls / self.wall_s


async def bare_openai_loop(base_url: str, calls: Sequence[Call], concurrency: int, model: str) -> Measurement:
    """What a user would write: ``AsyncOpenAI`` + a semaphore, no timing, no records."""
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(
        api_key="overhead", base_url=base_url, max_retries=0,
        http_client=openai.DefaultAsyncHttpx2Client(limits=limits),
    )  # fmt: skip
    window = asyncio.Semaphore(concurrency)

    async def one(call: Call) -> None:
        async with window:
            await client.chat.completions.create(
                model=model, messages=list(call.messages),  # type: ignore[arg-type]
                response_format={"type": "json_object"}, max_tokens=MAX_TOKENS,
            )  # fmt: skip

    start = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    wall = time.perf_counter() - start
    await client.close()
    return Measurement(name="bare AsyncOpenAI loop", calls=len(calls), wall_s=wall)


async def harness_cell(
    base_url: str, calls: Sequence[Call], strategy: str, concurrency: int, model: str
) -> Measurement:
    """The full harness path: Runner, SDK client with counting hooks, rows streamed to CSV."""
    with tempfile.TemporaryDirectory() as folder, CallsWriter(Path(folder) / "calls.csv") as writer:
        runner = Runner(
            run_id="overhead", endpoint=Endpoint(base_url=base_url, api_key="overhead", model=model),
            settings=RequestSettings(max_retries=0), emit=writer.write,
        )  # fmt: skip
        spec = CellSpec(scenario="overhead", strategy=strategy, concurrency=concurrency, calls=tuple(calls))
        meta = await runner.run_cell(spec)
        if writer.rows != len(calls):
            raise RuntimeError(f"harness wrote {writer.rows} rows for {len(calls)} calls")
    return Measurement(name=f"harness {strategy}", calls=len(calls), wall_s=meta.wall_s)


def median_rounds(
    rounds: int, *makers: Callable[[], Awaitable[Measurement]]
) -> list[list[Measurement]]:
    """Run each measurement ``rounds`` times, interleaved (A B A B …) so drift hits both alike."""
    results: list[list[Measurement]] = [[] for _ in makers]

    async def all_rounds() -> None:
        for _ in range(rounds):
            for index, make in enumerate(makers):
                results[index].append(await make())

    asyncio.run(all_rounds())
    return results


def median_wall(measurements: Sequence[Measurement]) -> float:
    return statistics.median(m.wall_s for m in measurements)


def median_rps(measurements: Sequence[Measurement]) -> float:
    return statistics.median(m.rps for m in measurements)
