"""Faults from the mock server process: whatever happens to a call, it ends as exactly one row."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.sdk import OpenAIAsyncClient, OpenAISyncClient
from bench.core.calls import Call, build_calls, load_personas
from bench.engine.folder import execute, finalize
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.runner import Runner
from bench.mock import MockServer
from tests.support.cli_runs import invoke_bench, read_cells, read_rows
from tests.support.servers import MockServerFactory

N = 30


def run_in_process(
    server: MockServer,
    run_dir: Path,
    strategies: list[str],
    runner_kwargs: Mapping[str, Any],
    settings: RequestSettings,
    n: int = N,
    concurrency: int = 6,
) -> None:
    calls = build_calls(load_personas(limit=n), repeats=1)
    plan = RunPlan(label="faults", cells=tuple(matrix_cells(calls, strategies, [concurrency])))
    runner = Runner(
        run_id=run_dir.name,
        endpoint=Endpoint(base_url=server.base_url, api_key="test-key", is_mock=True),
        settings=settings,
        emit=lambda record: None,
        probe=server,
        **runner_kwargs,
    )
    asyncio.run(execute(plan, runner, run_dir))
    finalize(run_dir, run_dir.name)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "http_status", "error"),
    [
        pytest.param("error_rate", {"500", "503"}, "InternalServerError: server_error", id="500-503"),
        pytest.param("timeout_rate", {""}, "APITimeoutError", id="timeout"),
        pytest.param("reset_rate", {""}, "APIConnectionError", id="reset"),
        pytest.param("malformed_rate", {"200"}, "malformed_answer", id="malformed"),
        pytest.param("rate_limit_rate", {"429"}, "RateLimitError: rate_limit_exceeded", id="429"),
    ],
)
def test_every_attempt_failing_still_gives_one_row_per_call(
    mock_server_factory: MockServerFactory, tmp_path: Path, fault: str, http_status: set[str], error: str
) -> None:
    server = mock_server_factory(latency="fixed:0.01", **{fault: 1.0})
    # A short timeout only where the server never answers: a busy machine must not turn an answer into a retry.
    settings = RequestSettings(timeout_s=0.5 if fault == "timeout_rate" else 10.0, max_retries=1)
    run_in_process(server, tmp_path, ["semaphore", "threads"], {}, settings, concurrency=N)
    rows = read_rows(tmp_path)
    for strategy in ("semaphore", "threads"):
        assert sorted(r["call_id"] for r in rows if r["strategy"] == strategy) == sorted(
            call.call_id for call in build_calls(load_personas(limit=N))
        )
    assert {r["status"] for r in rows} == {"error"}
    assert {r["http_status"] for r in rows} == http_status
    assert all(r["error"].startswith(error) for r in rows), Counter(r["error"] for r in rows)
    retried = 1 if fault != "malformed_rate" else 0  # a 200 is not retried, whatever its content
    assert {r["attempts"] for r in rows} == {str(1 + retried)}
    if fault == "rate_limit_rate":  # the server's counters cover the last cell (threads)
        assert sum(int(r["http_429s"]) for r in rows if r["strategy"] == "threads") == 2 * N
        assert server.stats().http_429 == 2 * N


def check(call: Call, bad_call: str) -> None:
    """Raise as a bug in the harness would, for one call."""
    if call.call_id == bad_call:
        raise KeyError("a bug in the harness")


class FlakyAsync:
    """The real async client, except that one call raises."""

    def __init__(self, inner: OpenAIAsyncClient, bad_call: str) -> None:
        self.inner, self.bad_call = inner, bad_call

    async def complete(self, call: Call) -> Outcome:
        check(call, self.bad_call)
        return await self.inner.complete(call)

    async def aclose(self) -> None:
        await self.inner.aclose()


class FlakySync:
    """The real sync client, except that one call raises."""

    def __init__(self, inner: OpenAISyncClient, bad_call: str) -> None:
        self.inner, self.bad_call = inner, bad_call

    def complete(self, call: Call) -> Outcome:
        check(call, self.bad_call)
        return self.inner.complete(call)

    def close(self) -> None:
        self.inner.close()


def test_a_bug_in_one_call_is_that_calls_row_and_the_run_goes_on(mock_server: MockServer, tmp_path: Path) -> None:
    bad = "p00007-r000"
    factories = {
        "client_factory": lambda e, s, p: FlakyAsync(OpenAIAsyncClient(e, s, p), bad),
        "sync_client_factory": lambda e, s, p: FlakySync(OpenAISyncClient(e, s, p), bad),
    }
    run_in_process(mock_server, tmp_path, ["semaphore", "threads", "gather"], factories, RequestSettings())
    rows = read_rows(tmp_path)
    assert Counter(r["strategy"] for r in rows) == {"semaphore": N, "threads": N, "gather": N}
    failed = [r for r in rows if r["status"] == "error"]
    assert [r["call_id"] for r in failed] == [bad] * 3
    assert {r["error"] for r in failed} == {"internal_error: KeyError: 'a bug in the harness'"}


MATRIX = [
    "--mock-rate-limit-rate",
    "0.3",
    "--mock-error-rate",
    "0.1",
    "--mock-timeout-rate",
    "0.05",
    "--mock-reset-rate",
    "0.05",
    "--mock-malformed-rate",
    "0.05",
]


@pytest.mark.slow
def test_fault_matrix_ends_with_exactly_n_rows_and_no_crash(tmp_path: Path) -> None:
    """429 30 %, 500/503 10 %, timeouts 5 %, resets 5 %, malformed 5 % per attempt, SDK retries on."""
    n, out = 60, tmp_path / "run"
    args = [
        "run",
        "--strategy",
        "semaphore,threads",
        "--concurrency",
        "20",
        "--calls",
        str(n),
        "--latency",
        "0.02",
        "--timeout",
        "1",
        "--out",
        str(out),
        "--no-plots",
        *MATRIX,
    ]
    done = invoke_bench(args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    rows = read_rows(out)
    assert Counter(r["strategy"] for r in rows) == {"semaphore": n, "threads": n}
    for strategy in ("semaphore", "threads"):
        assert len({r["call_id"] for r in rows if r["strategy"] == strategy}) == n
    errors = Counter(r["error"].split(":")[0] for r in rows if r["status"] == "error")
    assert all(r["error"] for r in rows if r["status"] == "error")
    assert errors["malformed_answer"] > 0  # recorded as such, not dropped
    assert sum(int(r["http_429s"]) for r in rows) > 0
    # the server injected every kind of fault, and the rows account for every 429 it sent
    for cell in read_cells(out):
        injected = cell["server"]["injected"]
        assert all(injected[kind] > 0 for kind in ("error", "timeout", "reset", "malformed")), injected
        cell_429s = sum(int(r["http_429s"]) for r in rows if r["strategy"] == cell["strategy"])
        assert cell_429s == cell["server"]["http_429"] > 0
    summary = read_rows_summary(out)
    assert [int(s["calls"]) for s in summary] == [n, n]


def read_rows_summary(run_dir: Path) -> list[dict[str, str]]:
    import csv

    with (run_dir / "summary.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))
