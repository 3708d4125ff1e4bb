"""Scale: plans made as they are taken, rows in chunks and columns, a resume that sends only what is missing.

The full-size figures come from ``bench overhead --scale --scale-calls 10000,100000,1000000``; these
tests check the same properties at sizes a test can afford, by observation (allocations, rows, the
server's own request count), not by wall-clock thresholds.
"""

from __future__ import annotations

import csv
import json
import signal
import tracemalloc
from array import array
from pathlib import Path

import pandas as pd
import pytest

from bench.core.calls import build_calls, calls_for_count, lazy_calls, lazy_calls_for_count, load_personas
from bench.core.records import CALLS_FILE, CELLS_FILE, CallRecord
from bench.engine.folder import finish_tables
from bench.engine.plan import matrix_cells
from bench.engine.resume import missing_in_cell
from bench.overhead.scale import run_scale, scale_figures
from bench.report import columnar
from tests.support.cli_runs import invoke_bench, read_cells, start_bench, wait_for_rows
from tests.support.synthetic import Cell, lognormal, write_run

PEOPLE = load_personas(limit=500)


def peak_bytes_taking(calls_for: int) -> int:
    """The allocation peak of making a plan of ``calls_for`` calls and taking every call, as a strategy does."""
    tracemalloc.start()
    try:
        [cell] = matrix_cells(lazy_calls_for_count(PEOPLE, calls_for), ["workers"], [8])
        taken = 0
        for call in cell.calls:
            taken += len(call.call_id) > 0
        assert taken == calls_for
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_plan_ten_times_larger_takes_no_more_memory() -> None:
    small, large = peak_bytes_taking(10_000), peak_bytes_taking(100_000)
    assert large < small + 64 * 1024  # a list of Call objects would add ~20 MB here
    print(f"\nallocation peak taking every call: 10k {small / 1024:.0f} KiB, 100k {large / 1024:.0f} KiB")


def test_lazy_calls_are_the_calls_the_lists_held() -> None:
    assert list(lazy_calls_for_count(PEOPLE, 1234)) == calls_for_count(PEOPLE, 1234)
    assert list(lazy_calls(PEOPLE[:7], 3)) == build_calls(PEOPLE[:7], 3)
    calls = lazy_calls_for_count(PEOPLE, 1200)
    assert calls[-1] == list(calls)[-1]
    assert list(calls[10:20]) == list(calls)[10:20]


def test_a_resumed_cell_keeps_four_bytes_a_missing_call() -> None:
    [cell] = matrix_cells(lazy_calls_for_count(PEOPLE, 20_000), ["workers"], [8])
    done = frozenset(f"main/workers/8/{call.call_id}" for call in cell.calls[::2])
    missing = missing_in_cell(cell, done)
    assert len(missing) == 10_000
    assert [c.call_id for c in missing[:3]] == [c.call_id for c in list(cell.calls)[1:6:2]]
    positions = missing._positions  # type: ignore[attr-defined]
    assert isinstance(positions, array)
    assert positions.itemsize == 4


def test_a_large_run_is_summarised_from_its_columnar_copy_as_from_the_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")
    cells = [Cell(scenario="main", strategy="semaphore", concurrency=c, latencies=lognormal(400, c)) for c in (4, 16)]
    run = write_run(tmp_path / "run", cells)
    rows = tmp_path / "run" / CALLS_FILE
    with rows.open(newline="", encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))
    with rows.open("a", newline="", encoding="utf-8") as handle:  # text a spreadsheet would run: stored quoted
        handle.write(",".join(str(first[k]) for k in first).replace(first["call_id"], "'=x", 1) + "\n")
    from_csv = finish_tables(run, "r")
    assert not (run / columnar.PARQUET_FILE).exists()
    monkeypatch.setattr(columnar, "COLUMNAR_BYTES", 1)
    from_columns = finish_tables(run, "r")
    assert columnar.current(rows) == run / columnar.PARQUET_FILE
    pd.testing.assert_frame_equal(from_columns.summary, from_csv.summary)
    pd.testing.assert_frame_equal(from_columns.tally, from_csv.tally)
    assert from_columns.kept == from_csv.kept == 801
    assert "=x" in set(from_columns.calls["call_id"])  # read back as sent, the quote taken off
    with rows.open("a", encoding="utf-8") as handle:  # rows appended (a resume): the copy is stale, remade
        handle.write(rows.read_text(encoding="utf-8").splitlines()[-1].replace("=x", "=y") + "\n")
    assert columnar.current(rows) is None
    assert finish_tables(run, "r").kept == 802
    assert columnar.current(rows) is not None
    with rows.open("a", encoding="utf-8") as handle:  # a row copied twice (by hand) counts once
        handle.write(rows.read_text(encoding="utf-8").splitlines()[5] + "\n")
    again = finish_tables(run, "r")
    assert again.kept == 802
    assert int(again.summary["calls"].sum()) == 802


@pytest.mark.slow
def test_an_interrupted_run_resumed_sends_exactly_the_missing_calls(tmp_path: Path) -> None:
    n, out = 3000, tmp_path / "run"
    args = ["run", "--strategy", "workers", "--concurrency", "20", "--calls", str(n), "--client", "aiohttp"]
    args += ["--latency", "fixed:0.01", "--out", str(out), "--no-plots", "--quiet"]
    proc = start_bench(args, cwd=tmp_path)
    wait_for_rows(out, 300, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = (out / CALLS_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    # A process killed outright loses its last unflushed chunk: those calls must be sent again too.
    (out / CALLS_FILE).write_text("".join(lines[:-50]), encoding="utf-8")
    kept = len(lines) - 1 - 50
    assert 0 < kept < n

    resumed = invoke_bench(["run", "--resume", str(out), "--no-plots"])
    assert resumed.returncode == 0, resumed.stderr
    sent = sum(cell["server"]["received"] for cell in read_cells(out)[1:])
    assert sent == n - kept  # the server saw exactly the missing calls
    with (out / CALLS_FILE).open(newline="", encoding="utf-8") as handle:
        ids = [row["call_id"] for row in csv.DictReader(handle)]
    assert len(ids) == len(set(ids)) == n
    print(f"\nkept {kept} of {n} rows; the resume sent {sent}")


@pytest.mark.slow
def test_the_scale_benchmark_reports_rss_rows_and_the_bare_ratio(tmp_path: Path) -> None:
    result = run_scale(calls=2000, concurrency=20, bare_calls=500, keep=tmp_path)
    assert result.rows == result.unique_ids == 2000
    assert 20 < result.peak_rss_mb < 500
    assert result.mock_rss_mb > 10
    assert result.ratio > 0
    assert result.report_s is not None
    cells = [json.loads(line) for line in (tmp_path / "scale-aiohttp-2000" / CELLS_FILE).read_text().splitlines()]
    assert cells[0]["server"]["received"] == 2000
    judged = {f.what: f.passed for f in scale_figures(result) if f.passed is not None}
    assert all(judged.values()), judged


def test_a_ray_driver_appends_a_worker_s_formatted_batch_as_it_would_have_written_each_row(tmp_path: Path) -> None:
    from bench.clients.base import Endpoint, RequestSettings
    from bench.core.records import CallsWriter, format_rows
    from bench.engine.distributed.backend import RayRunner, _Cell
    from bench.engine.distributed.worker import RowBatch
    from bench.engine.folder import RowSink
    from bench.engine.runner import CellSpec, RunnerConfig

    def record(i: int) -> CallRecord:
        return scale_record(i, at=i / 10, error="=cmd" if i == 3 else "", worker="w0@h:1")

    config = RunnerConfig(
        run_id="r", endpoint=Endpoint(base_url="http://x.test/v1", api_key="k"), settings=RequestSettings()
    )
    runner = RayRunner(config=config, workers=1)
    spec = CellSpec(scenario="main", strategy="workers", concurrency=8, calls=())
    records = [record(i) for i in range(500)]
    written: dict[str, list[str]] = {}
    for how in ("row by row", "batched"):
        path = tmp_path / f"{how}.csv"
        with CallsWriter(path) as writer:
            cell = _Cell(spec=spec, origin_wall=0.0, t0=0.0, emit=RowSink(writer=writer), waiting=0)
            for first in range(0, len(records), 100):
                batch = records[first : first + 100]
                if how == "batched":
                    runner._write_batch(cell, RowBatch(records=batch, text=format_rows(batch)))
                else:
                    for one in batch:
                        runner._write(cell, one)
            # a replacement worker's batch that repeats rows: only the new ones are written
            again = records[-5:] + [record(500)]
            runner._write_batch(cell, RowBatch(records=again, text=format_rows(again)))
        written[how] = path.read_text(encoding="utf-8").splitlines()
    assert written["batched"] == written["row by row"]
    assert len(written["batched"]) == 1 + 501


def test_a_resume_takes_cancelled_rows_out_without_holding_the_file(tmp_path: Path) -> None:
    from bench.core.records import CALL_COLUMNS, format_rows
    from bench.engine.resume import drop_cancelled

    def record(i: int, status: str) -> CallRecord:
        return scale_record(i, status=status)

    path = tmp_path / CALLS_FILE
    ok = format_rows([record(i, "ok") for i in range(200)])
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(CALL_COLUMNS) + "\r\n")
        for _ in range(100):  # 20,000 rows
            handle.write(ok)
        handle.write(format_rows([record(i, "cancelled") for i in range(3)]))
    tracemalloc.start()
    try:
        dropped = drop_cancelled(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dropped == 3
    expected = (",".join(CALL_COLUMNS) + "\r\n" + ok * 100).encode()
    assert path.read_bytes() == expected, "the rows kept changed"
    assert peak < 2 * 2**20  # the rows as lists of cells took 20 MiB here


def scale_record(i: int, *, at: float = 0.0, status: str = "ok", error: str = "", worker: str = "") -> CallRecord:
    """Call ``i``'s row: a workers cell at C = 8, 0.2 s from ``at``."""
    return CallRecord(
        run_id="r",
        strategy="workers",
        concurrency=8,
        call_id=f"p{i:05d}-r000",
        persona_id=i,
        repeat=0,
        scheduled_s=at,
        start_s=at,
        end_s=at + 0.2,
        latency_s=0.2,
        status=status,  # type: ignore[arg-type]
        http_status=200,
        error=error,
        attempts=1,
        prompt_tokens=120,
        completion_tokens=12,
        answer="Harris",
        worker=worker,
    )
