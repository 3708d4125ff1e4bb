"""calls.csv's cells: the one-pass row builder writes what the per-cell rule says."""

from __future__ import annotations

import pytest

from bench.core.records import _DECIMALS, CALL_COLUMNS, CallRecord, _cell, csv_row


def record(**changes: object) -> CallRecord:
    fields: dict[str, object] = {
        "run_id": "r",
        "strategy": "semaphore",
        "concurrency": 8,
        "call_id": "p00001-r000",
        "persona_id": 1,
        "repeat": 0,
        "scheduled_s": 0.25,
        "start_s": 0.5,
        "end_s": 1.0,
        "latency_s": 0.5,
        "status": "ok",
        "http_status": 200,
        "error": "",
        "attempts": 1,
        "prompt_tokens": 12,
        "completion_tokens": None,
        "answer": "Harris",
        "cost_usd": 1.234e-7,
    }
    fields.update(changes)
    return CallRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="plain"),
        pytest.param({"persona_id": "=cmd", "answer": "+1", "error": "-x", "raw_answer": "'q"}, id="formulas"),
        pytest.param({"persona_id": "@a", "ttft_s": 0.1234567, "output_tokens": 7}, id="streamed"),
        pytest.param({"http_status": None, "status": "error", "error": "APITimeoutError"}, id="failed"),
    ],
)
def test_a_row_holds_each_cell_as_the_cell_rule_writes_it(changes: dict[str, object]) -> None:
    row = record(**changes)
    assert csv_row(row) == [_cell(getattr(row, name), _DECIMALS[name]) for name in CALL_COLUMNS]
