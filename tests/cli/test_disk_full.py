"""The disk fills up mid-run: one line naming what is kept and how to resume, never a traceback."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import pytest

from tests.support.cli_runs import error_lines, read_rows, run_bench


def small_files() -> None:
    # Every file this process writes stops at 4,000 bytes (EFBIG): calls.csv fills after ~20 rows.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))


@pytest.mark.slow
def test_a_full_disk_mid_run_is_one_line_and_the_rows_so_far_stay(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--no-plots", "-q", "--calls", "60", "--concurrency", "4", "--latency", "fixed:0.01"]
    done = run_bench([*args, "--out", str(out)], cwd=tmp_path, preexec_fn=small_files)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = error_lines(done.stderr)
    assert f"cannot write to {out}: File too large;" in line
    assert f"bench run --resume {out}" in line
    kept = read_rows(out)
    assert 0 < len(kept) < 60
    assert f"{len(kept)} calls are in" in line
