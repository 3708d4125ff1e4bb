"""Every ``--client`` against the real mock server: same outcomes, pools sized to C, counts that agree."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.core.calls import Call, build_calls, calls_for_count, load_personas
from bench.engine.runner import CellMeta, CellSpec, Runner
from bench.mock import MockServer
from tests.support.cli_runs import error_lines, invoke_bench, read_rows
from tests.support.servers import MockServerFactory

PEOPLE = load_personas()
ALL = list(CLIENTS)


async def outcomes(server: MockServer, client: str, calls: list[Call], settings: RequestSettings) -> list[Outcome]:
    endpoint = Endpoint(base_url=server.base_url, api_key="test-key")
    driver = CLIENTS[client].make(endpoint, settings, len(calls))
    try:
        return list(await asyncio.gather(*(driver.complete(call) for call in calls)))
    finally:
        await driver.aclose()


@pytest.mark.slow
def test_the_same_faults_give_the_same_outcomes_whatever_the_client(
    mock_server_factory: MockServerFactory,
) -> None:
    # Faults are drawn per call and attempt (x-stainless-retry-count), so every client meets the same ones.
    server = mock_server_factory(latency="zero", seed=3, error_rate=0.25, malformed_rate=0.2)
    calls = calls_for_count(PEOPLE, 60)
    settings = RequestSettings(max_retries=1, timeout_s=30)
    seen = {name: asyncio.run(outcomes(server, name, calls, settings)) for name in ALL}
    errors = {o.error for o in seen["openai"]}
    assert {"", "malformed_answer"} <= errors
    assert any(e.startswith("InternalServerError") for e in errors)
    assert any(o.attempts == 2 for o in seen["openai"])
    for name in ALL[1:]:
        assert seen[name] == seen["openai"], name
    assert server.stats().retries_seen == len(ALL) * sum(o.attempts - 1 for o in seen["openai"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "timeout_s"),
    [pytest.param("reset_rate", 30.0, id="reset"), pytest.param("timeout_rate", 0.5, id="hang")],
)
def test_dropped_and_hung_connections_are_connection_errors(
    mock_server_factory: MockServerFactory, fault: str, timeout_s: float
) -> None:
    server = mock_server_factory(latency="zero", **{fault: 1.0})
    calls = calls_for_count(PEOPLE, 4)
    settings = RequestSettings(max_retries=0, timeout_s=timeout_s)
    for name in ALL:
        for outcome in asyncio.run(outcomes(server, name, calls, settings)):
            assert not outcome.ok, name
            assert outcome.http_status is None, name
            assert outcome.attempts == 1, name
            # The SDK's aiohttp backend maps every aiohttp connection error to a timeout (its own choice).
            assert outcome.error == "APITimeoutError" or outcome.error.startswith("APIConnectionError: ")
            if fault == "timeout_rate":
                assert outcome.error == "APITimeoutError", name


def run_cell(server: MockServer, client: str, strategy: str, concurrency: int, calls: list[Call]) -> CellMeta:
    rows: list[object] = []
    runner = Runner(
        run_id="drivers",
        endpoint=Endpoint(base_url=server.base_url, api_key="test-key"),
        settings=RequestSettings(max_retries=2, timeout_s=30),
        emit=rows.append,
        probe=server,
        **CLIENTS[client].runner_factories(),
    )
    spec = CellSpec(scenario="drivers", strategy=strategy, concurrency=concurrency, calls=tuple(calls))
    meta = asyncio.run(runner.run_cell(spec))
    assert len(rows) == len(calls)
    return meta


@pytest.mark.parametrize(
    ("client", "strategy"),
    [pytest.param(name, "semaphore", id=f"{name}-semaphore") for name in ALL]
    + [
        pytest.param("httpx", "threads", id="httpx-threads"),
        pytest.param("aiohttp", "gather", id="aiohttp-gather"),
    ],
)
def test_the_pool_lets_exactly_c_calls_reach_the_server(mock_server: MockServer, client: str, strategy: str) -> None:
    calls = build_calls(PEOPLE[:12], repeats=2)
    # gather runs at C = N (the plan gives it every call at once); the pool must not hold it back.
    expected = len(calls) if strategy == "gather" else 6
    meta = run_cell(mock_server, client, strategy, expected, calls)
    assert meta.server is not None
    assert meta.server.peak_in_flight == expected == meta.max_in_flight
    assert meta.server.status_counts == {"200": len(calls)}
    gc.collect()  # an unclosed session or socket would warn here, and warnings are errors


@pytest.mark.parametrize("client", ALL)
def test_429s_and_retries_agree_with_the_server(mock_server_factory: MockServerFactory, client: str) -> None:
    server = mock_server_factory(latency="zero", rpm=600, burst_seconds=0.5)
    calls = calls_for_count(PEOPLE, 20)
    got = asyncio.run(outcomes(server, client, calls, RequestSettings(max_retries=3, timeout_s=30)))
    stats = server.stats()
    assert stats.http_429 > 0
    assert sum(o.http_429s for o in got) == stats.http_429
    assert sum(o.attempts - 1 for o in got) == stats.retries_seen
    assert sum(o.ok for o in got) == stats.status_counts.get("200", 0)


@pytest.mark.slow
def test_bench_run_with_a_raw_client_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "run",
        "--strategy",
        "semaphore,workers",
        "--concurrency",
        "4",
        "--calls",
        "30",
        "--latency",
        "0",
        "--client",
        "aiohttp",
        "--out",
        str(out),
        "--no-plots",
        "--quiet",
    ]
    done = invoke_bench(args)  # in this process: the run is under test, not the entry point
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert len(rows) == 60
    assert {r["status"] for r in rows} == {"ok"}
    assert all(r["server_s"] != "" and r["attempts"] == "1" for r in rows)
    assert json.loads((out / "run.json").read_text())["config"]["client"] == "aiohttp"


@pytest.mark.slow
@pytest.mark.parametrize("client", ["aiohttp", "openai-aiohttp"])
def test_threads_with_an_async_only_client_is_a_usage_error(
    tmp_path: Path, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = invoke_bench(["run", "--strategy", "threads", "--calls", "5", "--client", client])
    assert done.returncode == 2
    lines = error_lines(done.stderr)
    assert "Traceback" not in done.stderr
    assert any("needs a blocking client" in line and "openai or httpx" in line for line in lines)
    assert not (tmp_path / "results").exists()
