"""calls.csv's cells: the one-pass row builder writes what the per-cell rule says."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from bench.core import records
from bench.core.records import _DECIMALS, CALL_COLUMNS, CallRecord, CallsWriter, _cell, csv_row, format_rows
from tests.support.fakes import RECORD_FIELDS


def record(**changes: object) -> CallRecord:
    fields: dict[str, object] = RECORD_FIELDS | {"cost_usd": 1.234e-7}
    fields.update(changes)
    return CallRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="plain"),
        pytest.param({"persona_id": "=cmd", "answer": "+1", "error": "-x", "raw_answer": "'q"}, id="formulas"),
        pytest.param({"persona_id": "@a", "ttft_s": 0.1234567, "output_tokens": 7}, id="streamed"),
        pytest.param({"http_status": None, "status": "error", "error": "APITimeoutError"}, id="failed"),
        # values of another type than the column declares take the branch the rule gives them
        pytest.param({"start_s": 1, "latency_s": "0.5", "cost_usd": np.float64(1 / 3)}, id="not-floats"),
        pytest.param({"persona_id": 2.5, "answer": 7, "error": "\ttab", "repeat": True}, id="not-texts"),
        pytest.param({"answer": "=1+1", "served_model": "\rx", "finish_reason": "'quoted"}, id="more-formulas"),
        pytest.param({"end_s": -0.0, "server_s": float("nan"), "ttfb_s": 1e300}, id="odd-floats"),
    ],
)
def test_a_row_holds_each_cell_as_the_cell_rule_writes_it(changes: dict[str, object]) -> None:
    row = record(**changes)
    assert csv_row(row) == [_cell(getattr(row, name), _DECIMALS[name]) for name in CALL_COLUMNS]


def read_back(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_rows_reach_the_file_in_chunks_and_all_of_them_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr("bench.core.records.time.monotonic", lambda: now[0])
    path = tmp_path / "calls.csv"
    rows = [record(call_id=f"c{i}", answer="+1" if i % 2 else "Trump") for i in range(5)]
    with CallsWriter(path) as writer:
        writer.write(rows[0])
        writer.write(rows[1])
        assert len(read_back(path)) == 1  # the header: these two wait for their chunk
        now[0] += records.FLUSH_S  # a row this long after the last chunk goes out with it, at once
        writer.write(rows[2])
        assert [line[3] for line in read_back(path)[1:]] == ["c0", "c1", "c2"]
        writer.write(rows[3])
        writer.write_text(format_rows([rows[4]]), 1)  # a batch formatted elsewhere lands after the rows held
        assert writer.rows == 5
    lines = read_back(path)
    assert lines[0] == list(CALL_COLUMNS)
    assert lines[1:] == [[str(cell) for cell in csv_row(row)] for row in rows]


def test_a_chunk_is_written_once_it_holds_flush_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.core.records.time.monotonic", lambda: 0.0)
    monkeypatch.setattr(records, "FLUSH_ROWS", 3)
    path = tmp_path / "calls.csv"
    with CallsWriter(path) as writer:
        writer.write_many([record(call_id=f"c{i}") for i in range(2)])
        assert len(read_back(path)) == 1
        writer.write(record(call_id="c2"))
        assert len(read_back(path)) == 4
