"""Load: 10,000 calls at C=1,000 against the mock keep every row; the open-files limit is raised or named."""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli_runs import read_cells, read_rows, run_bench

CAP_WARNING = "caps this machine at about"


def nofile(soft: int, hard: int | None = None) -> Callable[[], None]:
    """A preexec_fn giving the child process this RLIMIT_NOFILE (hard unchanged when None)."""

    def apply() -> None:
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))

    return apply


def bench_load(
    tmp_path: Path, calls: int, concurrency: int, *extra: str, preexec_fn: Callable[[], None] | None = None
) -> tuple[Path, str]:
    out = tmp_path / "run"
    # The raw aiohttp client: the openai SDK costs ~10 ms of CPU a call at C=1,000 (minutes here).
    args = [
        "run",
        "--strategy",
        "semaphore",
        "--concurrency",
        str(concurrency),
        "--calls",
        str(calls),
        "--client",
        "aiohttp",
        "--out",
        str(out),
        "--no-plots",
        *extra,
    ]
    done = run_bench(args, cwd=tmp_path, timeout=110, preexec_fn=preexec_fn)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    return out, done.stderr


@pytest.mark.slow
def test_load_10k_calls_at_c1000_every_row_present(tmp_path: Path) -> None:
    out, stderr = bench_load(tmp_path, 10_000, 1_000, "--latency", "fixed:0.2", "--timeout", "60")
    rows = read_rows(out)
    assert len(rows) == 10_000
    assert len({r["call_id"] for r in rows}) == 10_000
    assert sum(r["status"] == "ok" for r in rows) == 10_000
    [cell] = read_cells(out)
    assert cell["max_in_flight"] == 1_000
    assert 500 <= cell["server"]["peak_in_flight"] <= 1_000  # the mock saw the window, not a trickle
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert (CAP_WARNING in stderr) == (hard != resource.RLIM_INFINITY and hard < 1_064), stderr


@pytest.mark.slow
def test_a_low_soft_limit_is_raised_quietly(tmp_path: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1_000:
        pytest.skip("the hard open-files limit is below 1,000 here")
    out, stderr = bench_load(tmp_path, 600, 500, "--latency", "fixed:0.1", preexec_fn=nofile(128))
    assert CAP_WARNING not in stderr
    rows = read_rows(out)
    assert len(rows) == 600
    assert all(r["status"] == "ok" for r in rows)


@pytest.mark.slow
def test_a_hard_limit_below_c_is_said_and_every_row_is_kept(tmp_path: Path) -> None:
    out, stderr = bench_load(
        tmp_path,
        1_000,
        1_000,
        "--latency",
        "fixed:0.05",
        "--timeout",
        "3",
        "--max-retries",
        "0",
        preexec_fn=nofile(256, 256),
    )
    assert "(256, hard 256) caps this machine at about 192 connections, below C=1000" in stderr
    rows = read_rows(out)
    assert len(rows) == 1_000
    assert len({r["call_id"] for r in rows}) == 1_000
    failed = [r for r in rows if r["status"] == "error"]
    assert failed
    assert all(r["error"] for r in failed)
