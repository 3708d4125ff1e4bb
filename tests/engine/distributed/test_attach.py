"""``bench run --ray-address`` attaches to a cluster started with ``ray start --head`` (on loopback)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_runs import bench_env, read_cells, read_rows, run_bench

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A one-node cluster from ``ray start --head --block`` with its own token; stopped by its pid."""
    pytest.importorskip("ray", reason='the Ray backend tests need the extra: pip install -e ".[ray]"')
    ray = shutil.which("ray")
    assert ray is not None
    port = free_port()
    # A token made for this cluster alone, shared with the driver through the environment.
    env = bench_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    command = [ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2"]
    command.append("--include-dashboard=false")
    head = subprocess.Popen(
        [*command, "--disable-usage-stats", "--block"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # its own process group: raylet, GCS and workers
            head.wait()


def test_run_attaches_to_a_ray_start_cluster_and_the_server_never_sees_more_than_c(
    ray_head: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = ray_head
    out = tmp_path / "run"
    args = ["run", "--backend", "ray", "--workers", "2", "--ray-address", address, "--strategy", "semaphore"]
    args += ["--concurrency", "20", "--calls", "400", "--latency", "fixed:0.02", "--out", str(out), "--no-plots"]
    result = run_bench(args, cwd=tmp_path, env=env, timeout=180)

    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    assert len(rows) == 400
    assert len({row["call_id"] for row in rows}) == 400
    assert {row["concurrency"] for row in rows} == {"20"}  # the cell's C, not a worker's share
    by_worker = Counter(row["worker"] for row in rows)
    assert sorted(by_worker.values()) == [200, 200]  # two worker processes sent the calls
    [cell] = read_cells(out)
    assert cell["server"]["received"] == 400
    assert cell["server"]["peak_in_flight"] <= 20
    assert cell["max_in_flight"] <= 20  # rebuilt from the rows on one time origin
    assert [w["concurrency"] for w in cell["workers"]] == [10, 10]
    assert all(w["clock_error_s"] < 0.05 for w in cell["workers"])
