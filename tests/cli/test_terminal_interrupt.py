"""Ctrl-C in a terminal: SIGINT reaches the whole process group, the built-in mock included."""

from __future__ import annotations

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
    args = ["run", "--strategy", "semaphore", "--concurrency", "4", "--calls", "60", "--latency", "fixed:0.3"]
    proc = subprocess.Popen(
        [*BENCH, *args, *extra, "--grace", "0.2", "--out", str(out), "--no-plots"],
        cwd=tmp_path,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        wait_for_rows(out, 6, proc)
        mocks = children(proc.pid)
        assert mocks, "the built-in mock is a child process"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in stdout + stderr
    assert "Connection refused" not in stdout + stderr
    assert proc.returncode == 130, stderr
    assert f"go on with: bench run --resume {out}" in stderr
    rows = read_rows(out)
    [cell] = read_cells(out)
    assert cell["interrupted"] is True
    assert cell["server"] is not None  # the mock still answered /stats after the cell
    assert len(rows) == cell["sent"] == cell["server"]["received"]  # every call the server saw is a row
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in mocks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in mocks), "the mock outlived bench"
