"""How fast the mock server is: it must never be the bottleneck of a benchmark.

Targets: ≥ 4,000 requests a second at zero latency on the server's one core, and 10,000
connections held open at once without an error. The client runs in this process (aiohttp, or
raw asyncio streams for the hold test), the server in its own, so the server's CPU time from
/proc tells us its capacity even when this client is the slower side.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from bench.core.calls import QUESTION
from bench.core.loops import run as run_on_fast_loop
from bench.core.oslimits import raise_open_file_limit
from bench.mock import MockConfig, MockServer

pytestmark = pytest.mark.slow  # benchmarks: figures, not the fast tier

T = TypeVar("T")
REQUESTS_PER_ROUND = 4000
CLIENT_CONNECTIONS = 64
HOLD_CONNECTIONS = 10_000
HOLD_LATENCY_S = 15.0  # opening 10,000 connections takes ~2 s idle, > 7 s with the other xdist workers busy
BUSY_CONNECTIONS = 1000
BUSY_SECONDS = 3.0  # longer than it takes this client to open 10,000 connections (~2 s here)
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "system",
                "content": "You are Maria Lopez, a 42-year-old nurse living in Phoenix, Arizona.",
            },
            {"role": "user", "content": QUESTION},
        ],
        "max_tokens": 120,
        "response_format": {"type": "json_object"},
    }
).encode()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return run_on_fast_loop(coro)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def zero_latency_server() -> Iterator[MockServer]:
    with MockServer(MockConfig(latency="zero")) as server:
        yield server


async def _drive(url: str, total: int, connections: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    remaining = iter(range(total))
    headers = {"Content-Type": "application/json", "Authorization": "Bearer test"}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in remaining:
                call_headers = {**headers, "x-bench-call-id": f"p{i % 5000:05d}-r{i // 5000:03d}"}
                async with session.post(url, data=BODY, headers=call_headers) as response:
                    await response.read()
                    statuses[response.status] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


def test_throughput_at_zero_latency(benchmark: Any, zero_latency_server: MockServer) -> None:
    server = zero_latency_server
    url = server.base_url + "/chat/completions"
    rounds: list[tuple[float, float | None]] = []

    def one_round() -> Counter[int]:
        cpu_before = _cpu_seconds(server.pid)
        started = time.perf_counter()
        statuses = _run(_drive(url, REQUESTS_PER_ROUND, CLIENT_CONNECTIONS))
        wall = time.perf_counter() - started
        cpu_after = _cpu_seconds(server.pid)
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        rounds.append((wall, cpu))
        return statuses

    server.reset_stats()
    statuses = benchmark.pedantic(one_round, rounds=3, warmup_rounds=1)
    assert statuses == {200: REQUESTS_PER_ROUND}
    stats = server.stats()
    assert stats.status_counts == {"200": REQUESTS_PER_ROUND * len(rounds)}
    best_wall = min(wall for wall, _ in rounds)
    benchmark.extra_info["requests_per_round"] = REQUESTS_PER_ROUND
    benchmark.extra_info["client_connections"] = CLIENT_CONNECTIONS
    benchmark.extra_info["req_per_s"] = round(REQUESTS_PER_ROUND / best_wall, 1)
    cpu_times = [cpu for _, cpu in rounds if cpu]
    if cpu_times:
        # The server's capacity on its one core, whatever the client in this process manages.
        per_cpu_s = REQUESTS_PER_ROUND / min(cpu_times)
        benchmark.extra_info["server_req_per_cpu_s"] = round(per_cpu_s, 1)  # target 4,000; ~9,000 on a laptop core


def _hold_request(i: int) -> bytes:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"x-bench-call-id: p{i:05d}-r000\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def _hold_one(port: int, i: int, connecting: asyncio.Semaphore) -> int:
    async with connecting:  # bounds the SYN burst, not the number of open connections
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_hold_request(i))
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        json.loads(await reader.readexactly(length))
        return int(head.split(b" ", 2)[1])
    finally:
        writer.close()
        await writer.wait_closed()


async def _hold(port: int, n: int) -> Counter[str]:
    connecting = asyncio.Semaphore(500)
    results = await asyncio.gather(*(_hold_one(port, i, connecting) for i in range(n)), return_exceptions=True)
    return Counter(str(r) if isinstance(r, int) else type(r).__name__ for r in results)


def test_ten_thousand_connections_held_open(benchmark: Any) -> None:
    raise_open_file_limit()
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < HOLD_CONNECTIONS + 500:
        pytest.skip(f"RLIMIT_NOFILE is {soft}; holding {HOLD_CONNECTIONS} connections needs more")
    with MockServer(MockConfig(latency=f"fixed:{HOLD_LATENCY_S}")) as server:
        port = int(server.url.rsplit(":", 1)[1])
        hold: Callable[[], Counter[str]] = lambda: _run(_hold(port, HOLD_CONNECTIONS))  # noqa: E731
        results = benchmark.pedantic(hold, rounds=1, warmup_rounds=0)
        stats = server.stats()
    assert results == {"200": HOLD_CONNECTIONS}
    assert stats.peak_in_flight == HOLD_CONNECTIONS
    assert stats.status_counts == {"200": HOLD_CONNECTIONS}
    assert stats.in_flight == 0
    assert server.returncode == 0
    assert server.stderr() == ""
    benchmark.extra_info["connections"] = HOLD_CONNECTIONS
    benchmark.extra_info["peak_in_flight"] = stats.peak_in_flight


async def _busy_connection(port: int, stop_at: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = _hold_request(1)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


def test_new_connections_are_served_while_the_server_is_busy(benchmark: Any, zero_latency_server: MockServer) -> None:
    """1,000 connections opened at once against a saturated server all get answers (figure: the slowest).

    libuv accepts one connection per loop iteration; under load that left late connections in
    the accept queue for seconds (their first request "took" 5 s) until bench.mock.listener.
    """
    raise_open_file_limit()
    port = int(zero_latency_server.url.rsplit(":", 1)[1])

    def busy() -> list[float]:
        latencies: list[float] = []

        async def run() -> None:
            stop_at = time.perf_counter() + BUSY_SECONDS
            await asyncio.gather(*(_busy_connection(port, stop_at, latencies) for _ in range(BUSY_CONNECTIONS)))

        _run(run())
        return latencies

    zero_latency_server.reset_stats()
    latencies = benchmark.pedantic(busy, rounds=1, warmup_rounds=0)
    assert len(latencies) >= BUSY_CONNECTIONS  # every connection got at least one answer
    stats = zero_latency_server.stats()
    assert stats.status_counts == {"200": len(latencies)}
    benchmark.extra_info["connections"] = BUSY_CONNECTIONS
    benchmark.extra_info["req_per_s"] = round(len(latencies) / BUSY_SECONDS, 1)
    benchmark.extra_info["max_latency_s"] = round(max(latencies), 3)  # ~0.3 s; 5 s when connections starved
