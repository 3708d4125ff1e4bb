"""SIGINT/SIGTERM keep every finished row and the summary; ``--resume`` completes the run exactly."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.engine.resume import done_keys, repair_tail
from tests.support.cli_runs import invoke_bench, read_cells, read_rows, start_bench, wait_for_rows
from tests.support.servers import MockServerFactory

N, STRATEGIES = 40, ("semaphore", "workers")


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "summary.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_sigint_keeps_finished_rows_and_resume_sends_exactly_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "run",
        "--strategy",
        ",".join(STRATEGIES),
        "--concurrency",
        "4",
        "--calls",
        str(N),
        "--latency",
        "fixed:0.2",
        "--out",
        str(out),
        "--no-plots",
    ]
    proc = start_bench(args, cwd=tmp_path)
    wait_for_rows(out, 10, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    kept = read_rows(out)
    keys = [(r["strategy"], r["call_id"]) for r in kept]
    assert 10 <= len(kept) < N
    assert len(set(keys)) == len(kept)  # the finished rows, once each
    assert {r["strategy"] for r in kept} == {"semaphore"}  # the second cell never started
    assert all(r["status"] == "ok" for r in kept)  # calls in flight finished within the grace period
    assert [int(s["calls"]) for s in read_summary(out)] == [len(kept)]  # the summary of what ran
    assert f"interrupted: {len(kept)} of {2 * N} calls" in stderr
    assert f"--resume {out}" in stderr
    [first] = read_cells(out)
    assert first["interrupted"] is True
    assert first["sent"] == len(kept)

    resumed = invoke_bench(["run", "--resume", str(out), "--no-plots"])
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert f"{len(kept)} of {2 * N} calls done, {2 * N - len(kept)} to go" in resumed.stdout
    rows = read_rows(out)
    assert Counter(r["strategy"] for r in rows) == {s: N for s in STRATEGIES}
    assert len({(r["strategy"], r["call_id"]) for r in rows}) == 2 * N  # no duplicates, none missing
    assert rows[: len(kept)] == kept  # appended, not rewritten
    resent = sum(cell["server"]["received"] for cell in read_cells(out)[1:])
    assert resent == 2 * N - len(kept)  # the server saw only the missing calls
    summary = read_summary(out)
    assert [(s["strategy"], int(s["calls"]), s["interrupted"]) for s in summary] == [
        ("semaphore", N, "False"),
        ("workers", N, "False"),
    ]
    print(f"\nrows kept after SIGINT: {len(kept)}; resumed rows: {len(rows) - len(kept)}; re-sent: {resent}")

    again = CliRunner().invoke(cli, ["run", "--resume", str(out), "--no-plots"])
    assert again.exit_code == 0, again.output
    assert "0 to go" in again.stdout
    assert len(read_rows(out)) == 2 * N


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["semaphore", "threads"])
def test_sigterm_cancels_slow_calls_after_the_grace_period(
    mock_server_factory: MockServerFactory, tmp_path: Path, strategy: str
) -> None:
    server = mock_server_factory(latency="fixed:60")
    out = tmp_path / "run"
    args = [
        "run",
        "--endpoint",
        server.base_url,
        "--strategy",
        strategy,
        "--concurrency",
        "4",
        "--calls",
        "12",
        "--grace",
        "0.5",
        "--out",
        str(out),
        "--no-plots",
    ]
    proc = start_bench(args, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while server.stats().in_flight < 4:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=30)  # the calls would take 60 s
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["cancelled"] * 4  # each call in flight is one row (resume resends it)
    [summary] = read_summary(out)
    assert (summary["calls"], summary["ok"], summary["errors"], summary["cancelled"]) == ("4", "0", "0", "4")
    [cell] = read_cells(out)
    assert cell["sent"] == 4
    assert cell["interrupted"] is True
    assert "(4 in flight written as cancelled)" in stderr
    deadline = time.monotonic() + 10
    while server.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = server.stats()
    assert stats.received == 4
    assert stats.in_flight == 0
    assert stats.completed == 0


def test_resume_cuts_a_half_written_last_row(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    header = "run_id,strategy,concurrency,call_id,scenario\n"
    calls.write_text(header + "r,semaphore,4,p00001-r000,main\nr,semaphore,4,p00002-r0")
    assert repair_tail(calls) is True
    assert calls.read_text() == header + "r,semaphore,4,p00001-r000,main\n"
    assert done_keys(tmp_path) == {"main/semaphore/4/p00001-r000"}
    assert repair_tail(calls) is False


@pytest.mark.slow
def test_sigint_writes_every_call_in_flight_as_cancelled_and_rates_cover_what_finished(
    mock_server_factory: MockServerFactory, tmp_path: Path
) -> None:
    server = mock_server_factory(latency="fixed:0.4")
    out = tmp_path / "run"
    args = ["run", "--endpoint", server.base_url, "--strategy", "semaphore", "--concurrency", "8", "--calls", "48"]
    proc = start_bench([*args, "--grace", "0", "--out", str(out), "--no-plots"], cwd=tmp_path)
    wait_for_rows(out, 12, proc)
    while server.stats().in_flight < 8:  # the next wave is on the wire
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    rows = read_rows(out)
    received = server.stats().received
    assert len(rows) == received  # every request the server saw is one row: none lost at the interrupt
    assert len({r["call_id"] for r in rows}) == len(rows)
    cancelled = [r for r in rows if r["status"] == "cancelled"]
    finished = [r for r in rows if r["status"] == "ok"]
    assert len(cancelled) >= 1
    assert len(finished) + len(cancelled) == len(rows)
    [summary] = read_summary(out)
    last_end = max(float(r["end_s"]) for r in finished)
    [cell] = read_cells(out)
    assert cell["wall_s"] > last_end  # the clock ran on to the interrupt…
    assert float(summary["wall_s"]) == pytest.approx(last_end, abs=1e-5)  # …the rates cover what finished
    assert float(summary["throughput_rps"]) == pytest.approx(len(finished) / last_end, rel=1e-4)
    assert (int(summary["ok"]), int(summary["cancelled"]), int(summary["errors"])) == (len(finished), len(cancelled), 0)
    assert f"interrupted: {len(finished)} of 48 calls" in stderr

    server.reset_stats()
    resumed = invoke_bench(["run", "--resume", str(out), "--no-plots"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} of 48 calls done, {48 - len(finished)} to go" in resumed.stdout
    assert server.stats().received == 48 - len(finished)  # the cancelled calls are sent again
    rows = read_rows(out)
    assert len(rows) == 48 == len({r["call_id"] for r in rows})  # one row per call, none cancelled
    assert {r["status"] for r in rows} == {"ok"}
