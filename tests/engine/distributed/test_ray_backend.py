"""The Ray backend against the real mock server and a real local Ray: rows, bounds, limits, deaths."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.engine.distributed import WORKER_LOST, RayRunner
from bench.engine.folder import execute
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.resume import done_keys
from bench.engine.runner import RunnerConfig
from bench.mock import MockServer
from tests.support.cli_runs import read_cells, read_rows
from tests.support.servers import MockServerFactory

pytestmark = pytest.mark.slow


def worker_pid(label: str) -> int:
    return int(label.rsplit(":", 1)[1])


def plan_of(strategy: str, concurrency: int, calls: int, rpm: float | None = None) -> RunPlan:
    workload = calls_for_count(load_personas(), calls)
    return RunPlan(label="ray", cells=tuple(matrix_cells(workload, [strategy], [concurrency], rpm=rpm)))


def run_on_ray(
    server: MockServer,
    plan: RunPlan,
    run_dir: Path,
    *,
    workers: int = 2,
    on_record: Callable[[CallRecord], None] | None = None,
    done: frozenset[str] = frozenset(),
    **options: Any,
) -> RayRunner:
    config = RunnerConfig(
        run_id=run_dir.name,
        endpoint=Endpoint(base_url=server.base_url, api_key="test-key", is_mock=True),
        settings=RequestSettings(max_retries=0, timeout_s=30),
    )
    runner = RayRunner(config=config, workers=workers, probe=server, **options)
    try:
        asyncio.run(execute(plan, runner, run_dir, on_record=on_record, done_ids=done))
    finally:
        runner.close()
    return runner


def test_rate_limited_over_two_workers_holds_the_global_limit(
    ray_local: Any, tmp_path: Path, mock_server_factory: MockServerFactory
) -> None:
    server = mock_server_factory(latency="fixed:0.05", rpm=1200)
    calls = 100
    run_on_ray(server, plan_of("rate_limited", 20, calls, rpm=1200), tmp_path)

    stats = server.stats(detail=True)
    assert stats.http_429 == 0
    assert stats.received == calls
    assert stats.admitted_s is not None
    admitted = sorted(stats.admitted_s)
    # The pace the server saw: 20 req/s (two workers each at 1200 RPM would be 40). Its own limit is judged
    # by the 429s above; the bound here leaves room for a token bucket that refilled while a busy
    # machine stalled its worker (the suite's other xdist workers), which then spends what it holds.
    assert (len(admitted) - 1) / (admitted[-1] - admitted[0]) <= 20 * 1.25
    assert len({row["worker"] for row in read_rows(tmp_path)}) == 2


def test_a_killed_worker_s_unfinished_calls_are_sent_again_never_lost_or_doubled(
    ray_local: Any, tmp_path: Path, mock_server: MockServer
) -> None:
    calls, killed = 160, list[str]()

    def kill_first_worker(record: CallRecord) -> None:
        if not killed and record.worker.startswith("w0@"):
            killed.append(record.worker)
            os.kill(worker_pid(record.worker), signal.SIGKILL)

    runner = run_on_ray(mock_server, plan_of("semaphore", 4, calls), tmp_path, on_record=kill_first_worker)

    rows = read_rows(tmp_path)
    assert killed
    assert runner.replaced == 1
    assert len(rows) == calls
    assert len({row["call_id"] for row in rows}) == calls
    assert all(row["status"] == "ok" for row in rows)
    workers = {row["worker"] for row in rows}
    assert killed[0] in workers
    assert len(workers) == 3
    [cell] = read_cells(tmp_path)
    assert cell["workers"][0]["replaced"] == 1


def test_without_a_replacement_a_dead_worker_s_calls_become_worker_lost_rows(
    ray_local: Any, tmp_path: Path, mock_server: MockServer
) -> None:
    calls, killed = 80, list[str]()

    def kill_first_worker(record: CallRecord) -> None:
        if not killed and record.worker.startswith("w0@"):
            killed.append(record.worker)
            os.kill(worker_pid(record.worker), signal.SIGKILL)

    run_on_ray(mock_server, plan_of("semaphore", 4, calls), tmp_path, on_record=kill_first_worker, attempts=1)

    rows = read_rows(tmp_path)
    assert len(rows) == calls
    assert len({row["call_id"] for row in rows}) == calls
    lost = [row for row in rows if row["error"] == WORKER_LOST]
    assert lost
    assert all(row["status"] == "error" for row in lost)
    assert {row["worker"] for row in rows if row["status"] == "ok"} >= set(killed)


def test_an_interrupted_ray_run_resumes_with_only_the_missing_calls(
    ray_local: Any, tmp_path: Path, mock_server: MockServer
) -> None:
    plan, calls = plan_of("semaphore", 4, 80), 80
    config = RunnerConfig(
        run_id=tmp_path.name,
        endpoint=Endpoint(base_url=mock_server.base_url, api_key="test-key", is_mock=True),
        settings=RequestSettings(max_retries=0, timeout_s=30),
    )
    runner = RayRunner(config=config, workers=2, probe=mock_server)

    def stop_after_20(record: CallRecord) -> None:
        if len(done_keys(tmp_path)) >= 20:
            runner.stop.set()

    try:
        asyncio.run(execute(plan, runner, tmp_path, on_record=stop_after_20))
        kept = done_keys(tmp_path)
        assert 20 <= len(kept) < calls
        runner.stop.clear()  # the same workers resume (a new run would start new ones)
        asyncio.run(execute(plan, runner, tmp_path, done_ids=frozenset(kept)))
    finally:
        runner.close()

    rows = read_rows(tmp_path)
    assert len(rows) == calls
    assert len({row["call_id"] for row in rows}) == calls
    assert mock_server.stats().received == calls - len(kept)  # nothing on disk was sent again


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(["--workers", "2"], 2, "--workers and --ray-address need --backend ray", id="workers-alone"),
        pytest.param(["--backend", "ray", "--workers", "3"], 1, "needs 3 CPUs", id="more-workers-than-cpus"),
        pytest.param(
            ["--backend", "ray", "--workers", "2", "--strategy", "batch_api"],
            2,
            "batch_api runs on --backend local only",
            id="batch-api-on-ray",
        ),
    ],
)
def test_bad_ray_flags_get_one_line_and_an_exit_code(
    ray_local: Any, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(cli, ["run", "--calls", "4", "--out", str(tmp_path / "run"), "-q", *args])
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output
