"""Ctrl-C in a terminal: SIGINT reaches the whole process group, the built-in mock included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli_runs import BENCH, bench_env, read_cells, read_rows, wait_for_rows


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ctrl_c(args: list[str], out: Path, cwd: Path, rows: int) -> tuple[subprocess.CompletedProcess[str], list[int]]:
    """Start ``bench ARGS --out OUT`` as a terminal's foreground job, Ctrl-C it once ``rows`` rows are
    written; the finished process and the pids of the children it had then (the built-in mock)."""
    proc = subprocess.Popen(
        [*BENCH, *args, "--out", str(out), "--no-plots"],
        cwd=cwd,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        wait_for_rows(out, rows, proc)
        mocks = children(proc.pid)
        assert mocks, "the built-in mock is a child process"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), mocks


def gone(pids: list[int]) -> bool:
    """True once none of ``pids`` runs (waiting up to 10 s: the mock exits as bench stops it)."""
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="run"),
        pytest.param(["--stream"], id="streaming"),
    ],
)
def test_ctrl_c_to_the_process_group_keeps_the_mock_until_bench_is_done(tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "run"
    args = ["run", "--strategy", "semaphore", "--concurrency", "4", "--calls", "24", "--latency", "fixed:0.3"]
    done, mocks = ctrl_c([*args, *extra, "--grace", "0.2"], out, tmp_path, rows=4)
    stdout, stderr = done.stdout, done.stderr
    assert "Traceback" not in stdout + stderr
    assert "Connection refused" not in stdout + stderr
    assert done.returncode == 130, stderr
    assert f"go on with: bench run --resume {out}" in stderr
    rows = read_rows(out)
    [cell] = read_cells(out)
    assert cell["interrupted"] is True
    assert cell["server"] is not None  # the mock still answered /stats after the cell
    assert len(rows) == cell["sent"] == cell["server"]["received"]  # every call the server saw is a row
    assert gone(mocks), "the mock outlived bench"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["tune", "sweep"])
def test_ctrl_c_ends_a_search_with_what_it_has(tmp_path: Path, command: str) -> None:
    out = tmp_path / command
    args = [command, "--calls", "8", "--latency", "fixed:0.3", "--client", "aiohttp", "--grace", "0"]
    if command == "tune":
        args += ["--slo", "latency_p99_s<=5"]
    done, mocks = ctrl_c(args, out, tmp_path, rows=12)  # the second level is running
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Unclosed" not in done.stderr  # the client sessions were closed
    assert f"go on with: bench {command} --resume {out}" in done.stderr
    rows = read_rows(out)
    cells = read_cells(out)
    assert len(rows) == sum(cell["sent"] for cell in cells) == sum(cell["server"]["received"] for cell in cells)
    if command == "tune":  # the recommendation from the levels tried so far
        tried = json.loads((out / "tune.json").read_text())
        assert 1 <= len(tried["cells"]) < len(cells) + 1
        assert "recommend" in done.stdout
    else:
        assert "knee at C=" in done.stdout
    assert json.loads((out / "summary.json").read_text())["summary"]
    assert gone(mocks), "the mock outlived bench"
