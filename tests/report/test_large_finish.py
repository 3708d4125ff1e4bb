"""A large run's finish, a few columns at a time from its columnar copy, writes what the whole-frame finish
writes (byte for byte), and holds far less: the tables of a million calls fit the harness's budget."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.core.records import CALL_COLUMNS, CALLS_FILE, CANCELLED, CELLS_FILE, TIMING_COLUMNS, CallRecord, CallsWriter
from bench.engine.folder import RunTables, finish_tables
from bench.engine.session import judge
from bench.report import columnar
from bench.report.breakdown import _cells, cells_of
from bench.report.cells import read_cell_lines
from bench.report.evidence import failure_lines
from bench.report.summary import EVIDENCE_INPUT, SUMMARY_INPUT, read_calls, summarize

pytest.importorskip("pyarrow")

OUTPUTS = ("summary.csv", "tally.csv", "endpoints.csv", "summary.json", "run.json", CELLS_FILE)
CELLS = (("main", "semaphore", 4, "window"), ("main", "workers", 8, "window"), ("open", "poisson", 16, "arrivals"))


def record(scenario: str, strategy: str, concurrency: int, i: int, rng: np.random.Generator) -> CallRecord:
    """A call of a mixed run: ok or failed (some without an answer), two endpoints, streamed or not."""
    failed, timed_out = i % 7 == 3, i % 11 == 5
    latency = float(rng.lognormal(np.log(0.2), 0.4))
    start = i * 0.01 + float(rng.uniform(0, 0.005))
    ok = not (failed or timed_out)
    parts: dict[str, Any] = {name: latency / 10 for name in TIMING_COLUMNS if not timed_out}
    return CallRecord(
        run_id="mixed",
        strategy=strategy,
        concurrency=concurrency,
        call_id=f"p{i:05d}-r000" if i != 9 else "=p9",  # a formula-like id, stored after a quote
        persona_id=i,
        repeat=0,
        scheduled_s=i * 0.01,
        start_s=start,
        end_s=start + latency,
        latency_s=latency,
        status="ok" if ok else "error",
        http_status=None if timed_out else 500 if failed else 200,
        error="APITimeoutError" if timed_out else "InternalServerError (500)" if failed else "",
        attempts=2 if i % 5 == 0 else 1,
        prompt_tokens=None if timed_out else 100 + i % 9,
        completion_tokens=None if not ok else 12,
        answer=("Harris" if i % 3 else "Trump") if ok else "",
        server_s=None if timed_out else latency / 2,
        http_429s=1 if i % 13 == 0 else 0,
        scenario=scenario,
        cost_usd=None if not ok else 0.00002 + i * 1e-9,
        endpoint="a" if i % 2 else "b",
        ttft_s=latency / 3 if ok and scenario == "open" else None,
        itl_s=0.01 if ok and scenario == "open" else None,
        output_tokens=12 if ok and scenario == "open" else None,
        **parts,
        finish_reason="stop" if ok else "",
        served_model="gpt-4o-mini-2024" if i % 17 else "other-model",
        raw_answer="" if ok else "oops",
        reconnects=1 if i % 19 == 0 else 0,
    )


def mixed_run(run_dir: Path, n: int = 300) -> Path:
    """Three cells (one open-loop), errors and timeouts, two endpoints, calls cancelled by an interrupt and
    sent again, a row copied twice, a call cancelled twice, and a cell whose cells.jsonl line is lost."""
    rng = np.random.default_rng(7)
    run_dir.mkdir(parents=True)
    lines = []
    with CallsWriter(run_dir / CALLS_FILE) as writer:
        for scenario, strategy, concurrency, ideal in CELLS:
            records = [record(scenario, strategy, concurrency, i, rng) for i in range(n)]
            for first in records[:5]:  # in flight at the interrupt, sent again by the resume below
                writer.write(dataclasses.replace(first, status=CANCELLED, error="cancelled"))
            for one in records:
                writer.write(one)
            writer.write(records[20])  # copied twice: counts once
            twice = dataclasses.replace(records[0], call_id="gone", status=CANCELLED)
            writer.write(twice)
            writer.write(twice)
            if strategy != "workers":  # its line lost: rebuilt from its rows
                line = {"scenario": scenario, "strategy": strategy, "concurrency": concurrency, "calls": n}
                line.update(
                    wall_s=4.0, max_in_flight=concurrency, ideal=ideal, rate=50.0 if ideal == "arrivals" else None
                )
                lines.append(json.dumps(line))
    (run_dir / CELLS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps({"config": {"calls": n}}) + "\n", encoding="utf-8")
    return run_dir


def test_the_columnar_finish_writes_what_the_whole_frame_finish_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = mixed_run(tmp_path / "whole" / "run")  # the same folder name: summary.json names it
    split = tmp_path / "split" / "run"
    shutil.copytree(whole, split)
    by_frame = finish_tables(whole, "mixed")
    assert by_frame.whole is not None
    judge(whole, by_frame.summary, ["errors < 100"], tmp_path / "whole.xml")
    monkeypatch.setattr(columnar, "COLUMNAR_BYTES", 1)
    by_columns = finish_tables(split, "mixed")
    assert by_columns.whole is None
    assert columnar.current(split / CALLS_FILE) is not None
    judge(split, by_columns.summary, ["errors < 100"], tmp_path / "split.xml")
    for name in OUTPUTS:
        assert filecmp.cmp(whole / name, split / name, shallow=False), name
    assert filecmp.cmp(tmp_path / "whole.xml", tmp_path / "split.xml", shallow=False)
    assert (by_columns.kept, by_columns.cancelled) == (by_frame.kept, by_frame.cancelled) == (900, 0)
    assert len(read_cell_lines(split)) == 3  # the lost line rebuilt
    assert sorted(by_columns.summary["calls"]) == [300, 300, 300]
    # What the console says of the calls, from categories and a column at a time, is what it says from the frame.
    frame, view = by_frame.columns(EVIDENCE_INPUT), by_columns.columns(EVIDENCE_INPUT)
    assert failure_lines(view, "gpt-4o") == failure_lines(frame, "gpt-4o") != []
    parts = _cells(by_frame.calls)
    assert cells_of(by_columns.source()) == cells_of(by_frame.source()) == parts
    assert len(parts) == 3


def test_a_cancelled_row_not_sent_again_stays_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = mixed_run(tmp_path / "run", n=40)
    with CallsWriter(run / CALLS_FILE, append=True) as writer:  # interrupted again: one call left cancelled
        writer.write(
            dataclasses.replace(record("main", "semaphore", 4, 40, np.random.default_rng(1)), status=CANCELLED)
        )
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    expected = finish_tables(run, "mixed")
    monkeypatch.setattr(columnar, "COLUMNAR_BYTES", 1)
    found = finish_tables(copy, "mixed")
    assert (
        (found.kept, found.cancelled) == (expected.kept, expected.cancelled) == (120, 1)
    )  # a call cancelled twice and never sent again: not kept
    assert filecmp.cmp(run / "summary.csv", copy / "summary.csv", shallow=False)


def columnar_run(run_dir: Path, rows: int) -> Path:
    """A one-cell run of ``rows`` calls as its columnar copy (written directly: no CSV to convert)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    run_dir.mkdir(parents=True)
    (run_dir / CALLS_FILE).write_text(",".join(CALL_COLUMNS) + "\n", encoding="utf-8")
    latency = rng.lognormal(np.log(0.2), 0.3, rows)
    start = np.arange(rows) / 1000.0
    numbers = {
        "concurrency": np.full(rows, 200),
        "persona_id": np.arange(rows),
        "repeat": np.zeros(rows, dtype=np.int64),
        "scheduled_s": start,
        "start_s": start,
        "end_s": start + latency,
        "latency_s": latency,
        "http_status": np.full(rows, 200),
        "attempts": np.ones(rows, dtype=np.int64),
        "prompt_tokens": np.full(rows, 130),
        "completion_tokens": np.full(rows, 20),
        "server_s": np.zeros(rows),
        "http_429s": np.zeros(rows, dtype=np.int64),
        "cost_usd": np.full(rows, 3.4e-5),
        **{name: latency / 7 for name in TIMING_COLUMNS},
        "reconnects": np.zeros(rows, dtype=np.int64),
    }
    texts = {
        "run_id": "big",
        "strategy": "workers",
        "status": "ok",
        "scenario": "main",
        "endpoint": "mock",
        "finish_reason": "stop",
        "served_model": "gpt-4o-mini",
    }
    columns: dict[str, pa.Array] = {}
    for name in CALL_COLUMNS:
        if name == "call_id":
            columns[name] = pa.array([f"p{i:07d}-r000" for i in range(rows)])
        elif name == "answer":
            columns[name] = pa.array(np.where(np.arange(rows) % 2, "Harris", "Trump"))
        elif name in numbers:
            columns[name] = pa.array(numbers[name])
        elif name in texts:
            columns[name] = pa.array([texts[name]] * rows)
        else:  # empty text, or a number not recorded (ttft_s without streaming)
            kind = pa.float64() if name.endswith("_s") or name == "output_tokens" else pa.string()
            columns[name] = pa.nulls(rows, kind)
    table = pa.table(columns).replace_schema_metadata({b"bench.csv_bytes": str((run_dir / CALLS_FILE).stat().st_size)})
    pq.write_table(table, run_dir / columnar.PARQUET_FILE, row_group_size=5000)
    line = {"scenario": "main", "strategy": "workers", "concurrency": 200, "calls": rows, "wall_s": rows / 1000}
    (run_dir / CELLS_FILE).write_text(json.dumps({**line, "max_in_flight": 200}) + "\n", encoding="utf-8")
    return run_dir


def traced_peak(work: Callable[[], object]) -> int:
    """The peak of what ``work`` allocates in Python and numpy (tracemalloc)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BUDGET_MB = 32  # finishing 200,000 calls: the Python/numpy peak and Arrow's, added


@pytest.mark.slow
def test_finishing_200k_calls_stays_under_a_budget_the_whole_frame_exceeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    monkeypatch.setattr(columnar, "COLUMNAR_BYTES", 1)
    run = columnar_run(tmp_path / "run", 200_000)
    path = run / CALLS_FILE
    assert columnar.current(path) is not None
    # Arrow's buffers are not traced: they come from a pool of their own here, whose peak counts too (no
    # other test uses jemalloc's pool, which lives as long as the process: buffers outliving the test are
    # safe, and its peak since the process began is this finish's).
    columnar.lean_allocators()  # once a process: it would set the pool below aside
    default = pa.default_memory_pool()
    pool = pa.jemalloc_memory_pool()
    pa.set_memory_pool(pool)
    try:
        tables: list[RunTables] = []
        python = traced_peak(lambda: tables.append(finish_tables(run, "big")))
        arrow = int(pool.max_memory() or 0)
        assert int(tables[0].summary["calls"].iloc[0]) == tables[0].kept == 200_000
        # The finish before: the summary's columns of every row in one frame, then the summary (its peak).
        held = pool.bytes_allocated()
        frame = read_calls(path, SUMMARY_INPUT)
        in_arrow = pool.bytes_allocated() - held  # what the frame keeps in Arrow's buffers: a lower bound
        old = traced_peak(lambda: summarize(frame, read_cell_lines(run), "big"))
    finally:
        pa.set_memory_pool(default)
    mib = 2**20
    print(
        f"\nfinishing 200k calls: {python / mib:.0f} MiB traced + {arrow / mib:.0f} MiB Arrow; the whole frame: "
        f"{in_arrow / mib:.0f} MiB Arrow held + {old / mib:.0f} MiB traced summarising it"
    )
    assert python + arrow < BUDGET_MB * mib < in_arrow + old


def test_a_run_with_no_call_written_twice_sorts_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check for repeats is one 8-byte hash a row, sorted in place; rows are sorted and compared (~30
    bytes a row) only when two hashes tie."""
    from bench.report import rows as rows_module

    def compared(self: rows_module.ColumnarRows, ids: np.ndarray) -> None:
        raise AssertionError("rows compared in a run with no call written twice")

    monkeypatch.setattr(rows_module.ColumnarRows, "_repeats", compared)
    monkeypatch.setattr(rows_module, "BATCH_ROWS", 2_000)  # what a batch holds, small beside what grows
    peaks = []
    for size in (20_000, 100_000):
        run = columnar_run(tmp_path / f"run{size}", size)
        peaks.append(traced_peak(lambda: rows_module.ColumnarRows(run / columnar.PARQUET_FILE)))  # noqa: B023
        found = rows_module.ColumnarRows(run / columnar.PARQUET_FILE)
        assert found.unique
        assert found.kept == size
        assert not found.compared
    # What grows with the rows: a cell number (4 bytes) and a hash (8) a row; a batch of ids does not.
    assert peaks[1] - peaks[0] < 80_000 * 16


def test_hashes_that_tie_never_merge_two_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hash equal (as if each call collided with every other): the rows are compared by their text,
    the calls written twice found and no other, and the tables are those of the whole-frame finish."""
    from bench.report import rows as rows_module

    whole = mixed_run(tmp_path / "whole" / "run")
    split = tmp_path / "split" / "run"
    shutil.copytree(whole, split)
    expected = finish_tables(whole, "mixed")
    monkeypatch.setattr(columnar, "COLUMNAR_BYTES", 1)
    monkeypatch.setattr(rows_module, "_call_hashes", lambda ids: np.zeros(len(ids), dtype=np.uint64))
    found = finish_tables(split, "mixed")
    assert found.rows is not None
    assert found.rows.compared
    assert not found.rows.unique
    assert (found.kept, found.cancelled) == (expected.kept, expected.cancelled) == (900, 0)
    for name in ("summary.csv", "tally.csv", "endpoints.csv"):
        assert filecmp.cmp(whole / name, split / name, shallow=False), name
    one = columnar_run(tmp_path / "one", 3_000)  # no call twice: every tie a collision, every row kept
    rows = rows_module.ColumnarRows(one / columnar.PARQUET_FILE)
    assert rows.compared
    assert rows.unique
    assert rows.kept == 3_000


def test_a_report_on_a_large_run_reads_the_plots_columns_and_the_rest_a_column_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.report.breakdown import verdicts
    from bench.report.summary import PLOT_INPUT
    from bench.report.tables import load_run

    whole = mixed_run(tmp_path / "whole" / "run")
    split = tmp_path / "split" / "run"
    shutil.copytree(whole, split)
    finish_tables(whole, "mixed")
    small = load_run(whole)
    monkeypatch.setattr(columnar, "COLUMNAR_BYTES", 1)
    finish_tables(split, "mixed")
    large = load_run(split)
    assert small.rows is None
    assert large.rows is not None
    assert small.calls is not None
    assert large.calls is not None
    assert list(large.calls.columns) == list(PLOT_INPUT)  # not every column of every row
    assert len(large.calls) == len(small.calls) == 900
    assert verdicts(large.rows) == verdicts(small.calls)
    for scenario in ("main", "open"):  # the parts of the time, a scenario's cells at a time
        assert cells_of(large.rows, scenario) == _cells(small.calls[small.calls["scenario"] == scenario]) != []
    answers = large.answers()
    assert answers is not None
    assert len(answers) == 900
    assert {"persona_id", "status", "answer"} <= set(answers.columns)
