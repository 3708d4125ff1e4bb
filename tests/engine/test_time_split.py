"""Where the time went, against the mock server process: the parts add up, warm-up, a small pool."""

from __future__ import annotations

import asyncio
import dataclasses

import pandas as pd
import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.core.records import TIMING_COLUMNS, CallRecord
from bench.engine.runner import CellSpec, Runner
from bench.mock import MockServer
from bench.report.breakdown import excess_share, verdicts
from tests.support.servers import MockServerFactory

PARTS = ["prepare_s", "pool_wait_s", "connect_s", "ttfb_s", "body_s", "backoff_s"]


def run_cell(
    server: MockServer,
    client: str,
    *,
    strategy: str = "semaphore",
    concurrency: int = 8,
    calls: int = 40,
    settings: RequestSettings | None = None,
    warmup: bool = False,
) -> pd.DataFrame:
    rows: list[CallRecord] = []
    runner = Runner(
        run_id="split",
        endpoint=Endpoint(base_url=server.base_url, api_key="test-key", is_mock=True),
        settings=settings or RequestSettings(max_retries=0, timeout_s=30),
        emit=rows.append,
        warmup=warmup,
        **CLIENTS[client].runner_factories(),
    )
    work = tuple(calls_for_count(load_personas(limit=50), calls))
    spec = CellSpec(scenario="split", strategy=strategy, concurrency=concurrency, calls=work)
    asyncio.run(runner.run_cell(spec))
    assert len(rows) == calls
    return pd.DataFrame([dataclasses.asdict(row) for row in rows])


def adds_up(frame: pd.DataFrame) -> pd.Series:
    gap = (frame[PARTS].sum(axis=1) - frame["latency_s"]).abs()
    return (gap <= 0.001) | (gap <= 0.02 * frame["latency_s"])


@pytest.mark.parametrize(
    ("client", "strategy"),
    [
        pytest.param("openai", "semaphore", id="sdk"),
        pytest.param("openai", "threads", id="sdk-blocking"),
        pytest.param("openai-aiohttp", "semaphore", id="sdk-aiohttp"),
        pytest.param("httpx", "semaphore", id="raw-httpx"),
        pytest.param("httpx", "threads", id="raw-httpx-blocking"),
        pytest.param("aiohttp", "semaphore", id="raw-aiohttp"),
    ],
)
def test_parts_add_up_to_the_latency_and_ttfb_holds_the_servers_time(
    mock_server: MockServer, client: str, strategy: str
) -> None:
    frame = run_cell(mock_server, client, strategy=strategy)
    assert frame[PARTS].notna().all().all()
    assert (frame[PARTS] >= 0).all().all()
    assert adds_up(frame).mean() >= 0.99
    # The mock reports its injected delay; the client's time to first byte contains it.
    assert (frame["ttfb_s"] >= frame["server_s"] - 0.0005).mean() >= 0.99
    assert (frame["queue_s"] == 0).all()  # a closed loop: every call starts when it was meant to


@pytest.mark.slow
@pytest.mark.parametrize("client", ["openai", "aiohttp"])
def test_backoff_holds_the_sleeps_between_attempts_and_the_parts_still_add_up(
    mock_server_factory: MockServerFactory, client: str
) -> None:
    server = mock_server_factory(latency="fixed:0.01", error_rate=0.4, seed=3)
    frame = run_cell(server, client, settings=RequestSettings(max_retries=2, timeout_s=30))
    retried = frame[frame["attempts"] > 1]
    assert len(retried) > 0
    assert (retried["backoff_s"] >= 0.3).all()  # the SDK's first back-off is 0.5 s less up to 25 % jitter
    assert (frame[frame["attempts"] == 1]["backoff_s"] == 0).all()
    assert adds_up(frame).mean() >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize(
    ("client", "strategy"),
    [
        pytest.param("openai", "semaphore", id="sdk"),
        pytest.param("openai", "threads", id="sdk-blocking"),
        pytest.param("openai-aiohttp", "semaphore", id="sdk-aiohttp"),
        pytest.param("httpx", "semaphore", id="raw-httpx"),
        pytest.param("httpx", "threads", id="raw-httpx-blocking"),
        pytest.param("aiohttp", "semaphore", id="raw-aiohttp"),
    ],
)
def test_warmup_leaves_no_connection_set_up_in_the_cell(mock_server: MockServer, client: str, strategy: str) -> None:
    cold = run_cell(mock_server, client, strategy=strategy, concurrency=10)
    warm = run_cell(mock_server, client, strategy=strategy, concurrency=10, warmup=True)
    assert (cold["connect_s"] > 0).sum() >= 10  # without it the first wave opens the pool
    assert (warm["connect_s"] == 0).all()


@pytest.mark.slow
def test_a_small_pool_puts_the_excess_latency_in_pool_wait_and_the_end_line_says_so(
    mock_server_factory: MockServerFactory,
) -> None:
    # 0.4 s a call: the pool's wait dwarfs what a busy machine adds to the other parts.
    server = mock_server_factory(latency="fixed:0.4")
    settings = RequestSettings(max_retries=0, timeout_s=30, max_connections=10)
    frame = run_cell(server, "aiohttp", concurrency=50, calls=60, settings=settings)
    assert excess_share(frame, "pool_wait_s") >= 0.9
    lines = verdicts(frame)
    assert len(lines) == 1
    assert "pool_wait_s" in lines[0]
    assert "raise max connections" in lines[0]


def test_no_trace_leaves_the_parts_empty_but_keeps_the_queue(mock_server: MockServer) -> None:
    frame = run_cell(mock_server, "openai", settings=RequestSettings(max_retries=0, timeout_s=30, trace=False))
    assert frame[[c for c in TIMING_COLUMNS if c != "queue_s"]].isna().all().all()
    assert frame["queue_s"].notna().all()
    assert verdicts(frame) == []


@pytest.mark.parametrize(("opened", "says_closes"), [(40, True), (2, False)])
def test_the_end_line_does_not_advise_warm_up_when_the_server_closes_every_connection(
    opened: int, says_closes: bool
) -> None:
    # 40 calls at C = 1 whose time is mostly connection set-up: a pool of one opened once (and kept) is
    # what --warmup saves; one opened for every call (a server closing each, as llama-server does) is not.
    n = 40
    frame = pd.DataFrame(
        {
            "strategy": ["semaphore"] * n,
            "concurrency": [1] * n,
            "latency_s": [0.010] * n,
            "prepare_s": [0.0001] * n,
            "pool_wait_s": [0.0] * n,
            "connect_s": [0.008 if i < opened else 0.0 for i in range(n)],
            "ttfb_s": [0.0015] * n,
            "server_s": [0.001] * n,
            "body_s": [0.0004] * n,
            "backoff_s": [0.0] * n,
        }
    )
    frame.loc[frame["connect_s"] == 0, "latency_s"] = 0.002
    (line,) = verdicts(frame)
    assert "connect_s" in line
    assert ("the server closes them" in line) is says_closes
    assert ("--warmup" in line and "cannot help" not in line) is not says_closes
