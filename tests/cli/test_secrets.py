"""A canary API key: every byte a run writes or prints is scanned for it, and for pieces of it."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.sdk import OpenAIAsyncClient, OpenAISyncClient
from bench.core.calls import Call, build_calls, load_personas
from bench.engine.folder import execute
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.runner import CellSender, Runner
from bench.mock import MockServer
from tests.support.cli_runs import bench_env, read_rows, start_bench, wait_for_rows
from tests.support.servers import MockServerFactory


@pytest.fixture
def canary() -> str:
    return "sk-canary-" + secrets.token_hex(20)


def pieces(key: str, width: int = 8) -> list[str]:
    """Every ``width``-character run of the key's random part (a partial leak counts too)."""
    body = key.removeprefix("sk-canary-")
    return [body[i : i + width] for i in range(len(body) - width + 1)]


def assert_nowhere(key: str, texts: list[str], root: Path) -> int:
    """No key, no piece of it, in ``texts`` or in any file under ``root``; returns the bytes scanned."""
    blobs = [text.encode() for text in texts]
    blobs += [path.read_bytes() for path in root.rglob("*") if path.is_file()]
    for blob in blobs:
        assert key.encode() not in blob
        for piece in pieces(key):
            assert piece.encode() not in blob, piece
    return sum(len(blob) for blob in blobs)


def bench_in_process(args: list[str], env: dict[str, str | None]) -> Result:
    return CliRunner().invoke(cli, ["run", "--no-plots", *args], env={"OPENAI_API_KEY": None, **env})


@pytest.mark.slow
def test_canary_key_is_in_no_file_output_or_error(
    mock_server_factory: MockServerFactory, tmp_path: Path, canary: str
) -> None:
    printed: list[str] = []
    # 1. an interrupted run (its own process: real signals, real streams) and its resume
    slow = tmp_path / "slow"
    proc = start_bench(
        [
            "run",
            "--calls",
            "20",
            "--concurrency",
            "2",
            "--latency",
            "0.1",
            "--out",
            str(slow),
            "--mock-error-rate",
            "0.2",
            "--mock-malformed-rate",
            "0.1",
        ],
        cwd=tmp_path,
        env=bench_env(OPENAI_API_KEY=canary),
    )
    wait_for_rows(slow, 4, proc)
    proc.send_signal(signal.SIGINT)
    printed += list(proc.communicate(timeout=60))
    assert proc.returncode == 130
    resumed = bench_in_process(["--resume", str(slow)], {"OPENAI_API_KEY": canary})
    assert resumed.exit_code == 0, resumed.output
    printed.append(resumed.output)
    # 2. the built-in mock with every fault: error rows, SDK retries, a summary
    faults = [
        "--mock-error-rate",
        "0.2",
        "--mock-reset-rate",
        "0.1",
        "--mock-malformed-rate",
        "0.1",
        "--mock-rate-limit-rate",
        "0.2",
        "--timeout",
        "5",
    ]
    ok = bench_in_process(
        [
            "--strategy",
            "semaphore,threads",
            "--calls",
            "30",
            "--concurrency",
            "10",
            "--latency",
            "0.02",
            "--out",
            str(tmp_path / "faults"),
            *faults,
        ],
        {"OPENAI_API_KEY": canary},
    )
    assert ok.exit_code == 0, ok.output
    printed.append(ok.output)
    # 3. a server that rejects the key (its 401 body quotes the ends of the key it was sent)
    server = mock_server_factory(latency="fixed:0.02", api_key="the-expected-key")
    denied = bench_in_process(
        ["--endpoint", server.base_url, "--calls", "50", "--api-key-env", "MY_KEY", "--out", str(tmp_path / "denied")],
        {"MY_KEY": canary},
    )
    assert denied.exit_code == 1
    assert "authentication failed" in denied.stderr
    assert {row["http_status"] for row in read_rows(tmp_path / "denied")} == {"401"}
    printed.append(denied.output)
    # 4. the paid-endpoint guard, which prints an estimate before refusing
    paid = ["--endpoint", "https://api.openai.com/v1", "--calls", "10"]
    guard = bench_in_process(paid, {"OPENAI_API_KEY": canary})
    assert guard.exit_code == 2
    assert "without --yes" in guard.stderr
    printed.append(guard.output)

    scanned = assert_nowhere(canary, printed, tmp_path)
    assert scanned > 10_000
    config = json.loads((tmp_path / "denied" / "run.json").read_text())["config"]
    assert config["api_key_env"] == "MY_KEY"  # the variable's name, never its value


def test_reprs_hide_the_key(canary: str) -> None:
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", api_key=canary)
    settings = RequestSettings()
    runner = Runner(run_id="r", endpoint=endpoint, settings=settings, emit=lambda record: None)
    async_client, sync_client = OpenAIAsyncClient(endpoint, settings, 1), OpenAISyncClient(endpoint, settings, 1)
    for thing in [endpoint, runner, async_client, sync_client]:
        assert canary not in repr(thing)
        assert canary not in str(thing)
    sync_client.close()
    asyncio.run(async_client.aclose())


class LeakyClient:
    """A client whose failure message quotes the key, as a careless library might."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def complete(self, call: Call) -> Outcome:
        raise RuntimeError(f"could not use key {self.key}")

    async def aclose(self) -> None:
        return None


def test_an_error_quoting_the_key_is_scrubbed(mock_server: MockServer, tmp_path: Path, canary: str) -> None:
    calls = build_calls(load_personas(limit=3))
    runner = Runner(
        run_id="r",
        endpoint=Endpoint(base_url=mock_server.base_url, api_key=canary),
        settings=RequestSettings(),
        emit=lambda record: None,
        client_factory=lambda e, s, p: LeakyClient(e.api_key),
    )
    plan = RunPlan(label="x", cells=tuple(matrix_cells(calls, ["semaphore"], [3])))
    asyncio.run(execute(plan, runner, tmp_path))
    rows = read_rows(tmp_path)
    assert len(rows) == 3
    assert {row["error"] for row in rows} == {"internal_error: RuntimeError: could not use key ***"}
    assert_nowhere(canary, [], tmp_path)
    assert CellSender.__repr__ is object.__repr__  # no custom repr that could print its secret
