"""Is the harness the bottleneck? Compare it with bare client loops and with the ideal bound.

Each measurement runs against a mock server in its own process; callers repeat them in
interleaved rounds and keep medians (2-core machines are noisy).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import httpx2
import openai

from bench.clients.base import CALL_ID_HEADER, Endpoint, RequestSettings
from bench.clients.wire import request_body, session_headers
from bench.core.calls import MAX_TOKENS, Call
from bench.core.loops import Loop
from bench.core.loops import run as run_on_loop
from bench.core.records import CALL_COLUMNS, FLUSH_ROWS, CallsWriter
from bench.engine.runner import CellSpec, RunnerConfig


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One timed pass; ``gaps_s`` (harness cells only) is latency_s − server_s of each row.

    ``cpu_s`` is this process's CPU time over the pass: per call, it is what the client path
    costs, and unlike wall time it hardly moves when other processes compete for the cores.
    """

    name: str
    calls: int
    wall_s: float
    gaps_s: tuple[float, ...] = ()
    server_cpu_s: float | None = None
    cpu_s: float = 0.0

    @property
    def cpu_per_call_us(self) -> float:
        return self.cpu_s / self.calls * 1e6

    @property
    def rps(self) -> float:
        return self.calls / self.wall_s


async def bare_openai_loop(base_url: str, calls: Sequence[Call], concurrency: int, model: str) -> Measurement:
    """What a user would write: ``AsyncOpenAI`` + a semaphore, no timing, no records."""
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(
        api_key="overhead",
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpx2Client(limits=limits),
    )
    window = asyncio.Semaphore(concurrency)

    async def one(call: Call) -> None:
        async with window:
            await client.chat.completions.create(  # type: ignore[call-overload]
                model=model,
                messages=list(call.messages),
                response_format={"type": "json_object"},
                max_tokens=MAX_TOKENS,
                extra_headers={CALL_ID_HEADER: call.call_id},
            )

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(call) for call in calls))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    await client.close()
    return Measurement(name="bare AsyncOpenAI loop", calls=len(calls), wall_s=wall, cpu_s=cpu)


async def bare_aiohttp_loop(base_url: str, calls: Sequence[Call], concurrency: int, model: str) -> Measurement:
    """The least a client can do: aiohttp + a semaphore, the SDK's request, the answer parsed."""
    endpoint = Endpoint(base_url=base_url, api_key="overhead", model=model)
    settings, url = RequestSettings(), base_url + "/chat/completions"
    window = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=session_headers(endpoint)) as session:

        async def one(call: Call) -> None:
            body, headers = request_body(endpoint, settings, call), {CALL_ID_HEADER: call.call_id}
            async with window, session.post(url, data=body, headers=headers) as response:
                json.loads(await response.read())

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(call) for call in calls))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Measurement(name="bare aiohttp loop", calls=len(calls), wall_s=wall, cpu_s=cpu)


# Where the bare loop that writes rows puts its values (the rest of a row stays empty).
_COLUMN: Final = {name: index for index, name in enumerate(CALL_COLUMNS)}


async def bare_aiohttp_rows_loop(base_url: str, calls: Sequence[Call], concurrency: int, model: str) -> Measurement:
    """``bare_aiohttp_loop`` keeping what the harness keeps: each call's answer read from its content and one
    calls.csv row a call (the same columns, ``csv.writer``, a thousand rows a write), as a user's own loop would.

    What the harness costs beyond that is its own: the answer's checks, the time split, retries' and re-sends'
    bookkeeping, interrupts."""
    endpoint = Endpoint(base_url=base_url, api_key="overhead", model=model)
    settings, url = RequestSettings(), base_url + "/chat/completions"
    window = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    blank: list[object] = [""] * len(CALL_COLUMNS)
    fixed: dict[str, object] = {"run_id": "bare", "scenario": "bare", "strategy": "semaphore"}
    for name, value in {**fixed, "concurrency": concurrency, "attempts": 1, "http_429s": 0, "reconnects": 0}.items():
        blank[_COLUMN[name]] = value
    i_call, i_persona, i_repeat, i_scheduled = (_COLUMN[n] for n in ("call_id", "persona_id", "repeat", "scheduled_s"))
    i_start, i_end, i_latency, i_status = (_COLUMN[n] for n in ("start_s", "end_s", "latency_s", "status"))
    i_http, i_prompt, i_completion, i_answer = (
        _COLUMN[n] for n in ("http_status", "prompt_tokens", "completion_tokens", "answer")
    )
    i_finish, i_model = _COLUMN["finish_reason"], _COLUMN["served_model"]
    with (
        tempfile.TemporaryDirectory() as folder,
        (Path(folder) / "calls.csv").open("w", newline="", encoding="utf-8", buffering=1 << 20) as handle,
    ):
        writer, rows = csv.writer(handle), list[list[object]]()
        writer.writerow(CALL_COLUMNS)
        async with aiohttp.ClientSession(connector=connector, headers=session_headers(endpoint)) as session:

            async def one(call: Call) -> None:
                body, headers = request_body(endpoint, settings, call), {CALL_ID_HEADER: call.call_id}
                async with window:
                    start = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        data = json.loads(await response.read())
                        status = response.status
                    end = time.perf_counter()
                usage, choice = data.get("usage") or {}, data["choices"][0]
                content = choice["message"]["content"]
                row = blank.copy()
                row[i_call], row[i_persona], row[i_repeat] = call.call_id, call.persona_id, call.repeat
                row[i_scheduled] = row[i_start] = f"{start - t0:.6f}"
                row[i_end], row[i_latency] = f"{end - t0:.6f}", f"{end - start:.6f}"
                row[i_status], row[i_http] = ("ok" if status == 200 else "error"), status
                row[i_prompt], row[i_completion] = usage.get("prompt_tokens"), usage.get("completion_tokens")
                row[i_answer] = json.loads(content).get("vote", "") if content else ""
                row[i_finish], row[i_model] = choice.get("finish_reason"), data.get("model")
                rows.append(row)
                if len(rows) >= FLUSH_ROWS:
                    writer.writerows(rows)
                    rows.clear()

            t0, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one(call) for call in calls))
            writer.writerows(rows)
            handle.flush()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return Measurement(name="bare aiohttp loop writing rows", calls=len(calls), wall_s=wall, cpu_s=cpu)


def _gaps(path: Path) -> tuple[float, ...]:
    """latency_s − server_s of every row in start order, read back from calls.csv (no failures allowed)."""
    gaps: list[tuple[float, float]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["status"] != "ok":
                raise RuntimeError(f"call {row['call_id']} failed ({row['error']}); figures need clean runs")
            if row["server_s"]:
                gaps.append((float(row["start_s"]), float(row["latency_s"]) - float(row["server_s"])))
    return tuple(gap for _, gap in sorted(gaps))


async def harness_cell(
    base_url: str,
    calls: Sequence[Call],
    strategy: str,
    concurrency: int,
    model: str,
    client: str = "openai",
    settings: RequestSettings | None = None,
) -> Measurement:
    """The full harness path: Runner, the ``client`` driver, rows streamed to CSV."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calls.csv"
        with CallsWriter(path) as writer:
            runner = RunnerConfig(
                run_id="overhead",
                endpoint=Endpoint(base_url=base_url, api_key="overhead", model=model),
                settings=settings or RequestSettings(max_retries=0),
                client=client,
            ).runner(stop=threading.Event(), emit=writer.write)
            spec = CellSpec(scenario="overhead", strategy=strategy, concurrency=concurrency, calls=tuple(calls))
            cpu = time.process_time()
            meta = await runner.run_cell(spec)  # its wall_s leaves out making and closing the client
            cpu = time.process_time() - cpu
            rows = writer.rows
        if rows != len(calls):
            raise RuntimeError(f"harness wrote {rows} rows for {len(calls)} calls")
        gaps = _gaps(path)
    name = f"harness {strategy} ({client})"
    return Measurement(name=name, calls=len(calls), wall_s=meta.wall_s, gaps_s=gaps, cpu_s=cpu)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def with_server_cpu(pid: int, work: Awaitable[Measurement]) -> Measurement:
    """``work``'s Measurement plus the CPU time the server process ``pid`` spent meanwhile."""
    before = cpu_seconds(pid)
    measured = await work
    after = cpu_seconds(pid)
    if before is None or after is None:
        return measured
    return dataclasses.replace(measured, server_cpu_s=after - before)


def median_rounds(
    rounds: int, *makers: Callable[[], Awaitable[Measurement]], loop: Loop = "asyncio"
) -> list[list[Measurement]]:
    """Run each measurement ``rounds`` times, interleaved (A B A B …) so drift hits both alike."""
    results: list[list[Measurement]] = [[] for _ in makers]

    async def all_rounds() -> None:
        for _ in range(rounds):
            for index, make in enumerate(makers):
                results[index].append(await make())

    run_on_loop(all_rounds(), loop=loop)
    return results


def median_wall(measurements: Sequence[Measurement]) -> float:
    return statistics.median(m.wall_s for m in measurements)


def median_rps(measurements: Sequence[Measurement]) -> float:
    return statistics.median(m.rps for m in measurements)


def median_cpu_us(measurements: Sequence[Measurement]) -> float:
    return statistics.median(m.cpu_per_call_us for m in measurements)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation, as numpy and pandas compute it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_gap(measurements: Sequence[Measurement], q: float) -> float:
    """The median over rounds of each round's ``q``-th percentile gap."""
    return statistics.median(percentile(m.gaps_s, q) for m in measurements)
