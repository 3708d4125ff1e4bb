"""Strategies against the mock's OpenAI-style limits: 429s provoked, retries counted, the limit approached.

A strategy stays under a limit when the server sent it no 429s (the server enforces the bucket, so
what it admitted is under the limit by construction); 429s and retries are judged by what the server
sent and saw, never by the client's clock. How close a strategy gets to the limit depends
on how busy the machine is, so that figure lives in virtual time (``tests/strategies``) and in
``tests/benchmarks/test_rate_limit_bench.py``, not here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.engine.runner import CellSpec, Runner
from bench.mock import MockServer
from bench.mock.stats import ServerStats
from strategies.rate_limited import call_tokens
from tests.support.cli_runs import invoke_bench
from tests.support.servers import MockServerFactory

FAST = "fixed:0.05"


async def run_cell(
    server: MockServer, strategy: str, n: int, *, concurrency: int = 50, max_retries: int = 2, **knobs: Any
) -> tuple[list[CallRecord], ServerStats]:
    """One cell through the real runner and SDK client; its rows and the server's detailed stats."""
    rows: list[CallRecord] = []
    runner = Runner(
        run_id="limits",
        endpoint=Endpoint(base_url=server.base_url, api_key="test-key", is_mock=True),
        settings=RequestSettings(max_retries=max_retries, timeout_s=60),
        emit=rows.append,
        probe=server,
    )
    calls = tuple(calls_for_count(load_personas(), n))
    await runner.run_cell(CellSpec(scenario="limits", strategy=strategy, concurrency=concurrency, calls=calls, **knobs))
    return rows, server.stats(detail=True)


def assert_counts_match_the_server(rows: list[CallRecord], stats: ServerStats, n: int) -> None:
    assert len(rows) == n
    assert len({r.call_id for r in rows}) == n  # one row per call, whatever happened
    assert sum(r.http_429s for r in rows) == stats.http_429
    assert sum(r.attempts - 1 for r in rows) == stats.retries_seen
    assert sum(r.attempts for r in rows) == stats.received
    assert sum(r.status == "ok" for r in rows) == stats.admitted


@pytest.mark.slow
async def test_rate_limited_at_the_mocks_rpm_is_never_refused(mock_server_factory: MockServerFactory) -> None:
    rpm, n = 3000, 200
    server = mock_server_factory(latency=FAST, rpm=rpm)
    rows, stats = await run_cell(server, "rate_limited", n, rpm=float(rpm))
    assert stats.http_429 == 0
    assert stats.retries_seen == 0
    assert_counts_match_the_server(rows, stats, n)


@pytest.mark.slow
async def test_rate_limited_at_the_mocks_tpm_is_never_refused(mock_server_factory: MockServerFactory) -> None:
    n = 200
    calls = calls_for_count(load_personas(), n)
    costs = [call_tokens(call, RequestSettings().max_tokens) for call in calls]
    tpm = round(50 * 60 * sum(costs) / n)  # about 50 calls a second
    server = mock_server_factory(latency=FAST, tpm=tpm)
    rows, stats = await run_cell(server, "rate_limited", n, tpm=float(tpm))
    assert stats.http_429 == 0
    assert stats.admitted_tokens == sum(costs)
    assert_counts_match_the_server(rows, stats, n)
    assert stats.admitted == n


@pytest.mark.slow
@pytest.mark.parametrize("max_retries", [pytest.param(2, id="sdk-retries"), pytest.param(0, id="no-retries")])
async def test_gather_over_the_limit_is_refused_and_every_429_is_counted(
    mock_server_factory: MockServerFactory, max_retries: int
) -> None:
    n = 150
    server = mock_server_factory(latency=FAST, rpm=1200)  # a burst of 20, then 20 a second
    rows, stats = await run_cell(server, "gather", n, concurrency=n, max_retries=max_retries)
    assert stats.http_429 > n // 2
    assert_counts_match_the_server(rows, stats, n)
    assert max(r.attempts for r in rows) == max_retries + 1
    failed = [r for r in rows if r.status == "error"]
    assert failed
    assert all(r.http_status == 429 for r in failed)
    assert Counter(r.error for r in failed) == {"RateLimitError: rate_limit_exceeded": len(failed)}
    assert all(r.http_429s == r.attempts for r in failed)


@pytest.mark.slow
async def test_adaptive_learns_a_limit_it_was_not_told(mock_server_factory: MockServerFactory) -> None:
    rpm, n = 3000, 500  # 10 s at the limit
    server = mock_server_factory(latency=FAST, rpm=rpm)
    rows, stats = await run_cell(server, "adaptive", n, concurrency=100)
    assert_counts_match_the_server(rows, stats, n)
    assert stats.http_429 <= 0.01 * stats.received


@pytest.mark.slow
def test_bench_run_reports_429s_retries_and_utilisation(tmp_path: Path) -> None:
    out = tmp_path / "limits"
    result = invoke_bench(
        [
            "run",
            "--strategy",
            "gather,rate_limited,adaptive",
            "--concurrency",
            "20",
            "--calls",
            "60",
            "--latency",
            FAST,
            "--mock-rpm",
            "1800",
            "--rpm",
            "1800",
            "--out",
            str(out),
            "--no-plots",
            "--quiet",
        ],
        env={"OPENAI_API_KEY": "limits-key"},
    )
    assert result.returncode == 0, result.stderr
    assert "against the rate limit" in result.stdout
    summary = pd.read_csv(out / "summary.csv").set_index("strategy")
    assert (summary["calls"] == 60).all()
    assert (summary["http_429"] == summary["server_http_429"]).all()
    assert (summary["retries"] == summary["server_retries"]).all()
    assert summary.loc["gather", "http_429"] > 0
    assert summary.loc["rate_limited", "http_429"] == 0
    assert 0 < summary.loc["rate_limited", "utilisation"] <= 1.05  # how close to 1: the benchmark
    table = invoke_bench(["rate-limits", str(out), "--markdown"])
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("| strategy | C |")
    assert len(lines) == 2 + 3
