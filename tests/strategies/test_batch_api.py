"""The batch_api strategy against an in-process Batch API: splitting, partial results, re-attaching."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.batch import BatchError, BatchInfo, BatchLedger, BatchLimits
from bench.core.calls import build_calls, load_personas
from bench.core.prices import Price
from bench.core.records import CallRecord
from bench.engine.runner import CellSpec, Runner
from tests.support.fakes import completion_body, vote_for

ENDPOINT = Endpoint(base_url="http://fake.test/v1", api_key="unit-test-key")


class FakeBatches:
    """A Batch API in memory: each batch ends as ``final`` after ``polls`` retrieves, answering
    the first ``share`` of its lines (a vote per call id), one of them per ``error_every`` as a 500."""

    def __init__(
        self,
        *,
        limits: BatchLimits | None = None,
        final: str = "completed",
        share: float = 1.0,
        polls: int = 1,
        error_every: int = 0,
    ) -> None:
        self.limits = limits or BatchLimits()
        self.final, self.share, self.polls, self.error_every = final, share, polls, error_every
        self.files: dict[str, bytes] = {}
        self.created: list[str] = []
        self.retrieves: dict[str, int] = {}
        self.cancelled: list[str] = []
        self.closed = 0
        self.on_create: Callable[[], None] | None = None

    async def upload(self, data: bytes) -> str:
        file_id = f"file-{len(self.files)}"
        self.files[file_id] = data
        return file_id

    async def create(self, input_file_id: str) -> BatchInfo:
        batch_id = f"batch_{len(self.created)}"
        self.created.append(input_file_id)
        if self.on_create is not None:
            self.on_create()
        return BatchInfo(id=batch_id, status="validating")

    async def retrieve(self, batch_id: str) -> BatchInfo:
        if not batch_id.startswith("batch_") or int(batch_id[6:]) >= len(self.created):
            raise BatchError("NotFoundError: not_found", 404)
        seen = self.retrieves[batch_id] = self.retrieves.get(batch_id, 0) + 1
        if seen < self.polls:
            return BatchInfo(id=batch_id, status="in_progress")
        lines = self.files[self.created[int(batch_id[6:])]].splitlines()
        kept = lines[: int(len(lines) * self.share)]
        out, err = [], []
        for index, raw in enumerate(kept):
            custom_id = json.loads(raw)["custom_id"]
            if self.error_every and index % self.error_every == 0:
                body = {"error": {"message": "boom", "type": "server_error", "code": None}}
                err.append({"custom_id": custom_id, "response": {"status_code": 500, "body": body}, "error": None})
            else:
                body = completion_body(json.dumps({"vote": vote_for(custom_id), "reason": "r"}))
                out.append({"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None})
        ids: list[str | None] = []
        for kind, lines_out in (("out", out), ("err", err)):
            if lines_out:
                self.files[f"{batch_id}-{kind}"] = b"".join(json.dumps(x).encode() + b"\n" for x in lines_out)
                ids.append(f"{batch_id}-{kind}")
            else:
                ids.append(None)
        return BatchInfo(id=batch_id, status=self.final, output_file_id=ids[0], error_file_id=ids[1])

    async def cancel(self, batch_id: str) -> BatchInfo:
        self.cancelled.append(batch_id)
        return BatchInfo(id=batch_id, status="cancelling")

    async def content(self, file_id: str) -> bytes:
        return self.files[file_id]

    async def aclose(self) -> None:
        self.closed += 1


def runner_for(
    fake: FakeBatches, rows: list[CallRecord], ledger: Path | None = None, endpoint: Endpoint = ENDPOINT
) -> Runner:
    def no_chat(*args: object) -> None:
        raise AssertionError("batch_api must not open a chat client")

    return Runner(
        run_id="unit",
        endpoint=endpoint,
        settings=RequestSettings(max_retries=0, timeout_s=10),
        emit=rows.append,
        client_factory=no_chat,  # type: ignore[arg-type]
        batch_client_factory=lambda e, s: fake,
        ledger_path=ledger,
        price=Price(input_per_m=1.0, output_per_m=2.0),
        batch_discount=0.5,
    )


def cell(n: int) -> CellSpec:
    calls = tuple(build_calls(load_personas(limit=n)))
    return CellSpec(scenario="unit", strategy="batch_api", concurrency=1, calls=calls)


async def test_every_call_goes_in_one_jsonl_line_and_ends_as_one_priced_row(tmp_path: Path) -> None:
    fake, rows = FakeBatches(polls=3), list[CallRecord]()
    spec = cell(30)

    meta = await runner_for(fake, rows, tmp_path / "batches.jsonl").run_cell(spec)

    lines = [json.loads(x) for x in fake.files["file-0"].splitlines()]
    assert [x["custom_id"] for x in lines] == [c.call_id for c in spec.calls]
    assert {x["url"] for x in lines} == {"/v1/chat/completions"}
    assert lines[0]["body"]["response_format"] == {"type": "json_object"}
    assert sorted(r.call_id for r in rows) == sorted(c.call_id for c in spec.calls)
    assert all(r.status == "ok" and r.answer == vote_for(r.call_id) for r in rows)
    assert fake.retrieves == {"batch_0": 3}
    # 50 prompt + 12 completion tokens at $1/$2 per 1M, half price: 37 µ$ a call.
    assert all(r.cost_usd == pytest.approx(0.5 * (50 * 1.0 + 12 * 2.0) / 1e6) for r in rows)
    assert all(r.scheduled_s == r.start_s < r.end_s for r in rows)
    assert meta.sent == 30
    assert fake.closed == 1
    assert BatchLedger(tmp_path / "batches.jsonl").entries()[0].batch_id == "batch_0"


@pytest.mark.parametrize(
    ("limits", "batches"),
    [
        pytest.param(BatchLimits(max_requests=7), 5, id="by-requests"),
        pytest.param(BatchLimits(max_bytes=1_600), 15, id="by-bytes"),
    ],
)
async def test_cells_beyond_the_batch_limits_split_into_several_batches(limits: BatchLimits, batches: int) -> None:
    fake, rows = FakeBatches(limits=limits), list[CallRecord]()
    await runner_for(fake, rows).run_cell(cell(30))
    assert len(fake.created) == batches
    assert all(len(fake.files[f].splitlines()) <= limits.max_requests for f in fake.created)
    assert all(len(fake.files[f]) <= limits.max_bytes for f in fake.created)
    assert sorted(r.call_id for r in rows) == sorted(c.call_id for c in cell(30).calls)


@pytest.mark.parametrize("final", ["expired", "cancelled", "failed"])
async def test_unfinished_batches_leave_partial_results_and_error_rows(final: str) -> None:
    fake, rows = FakeBatches(final=final, share=0.5, error_every=5), list[CallRecord]()
    await runner_for(fake, rows).run_cell(cell(20))
    assert len(rows) == 20
    assert len({r.call_id for r in rows}) == 20
    by_error = {r.error for r in rows if r.status == "error"}
    assert f"batch_{final}" in by_error
    assert "InternalServerError: server_error" in by_error  # from the error file
    assert sum(r.status == "ok" for r in rows) == 8  # 10 answered, 2 of them errors


async def test_upload_failure_makes_each_call_an_error_row() -> None:
    class Refusing(FakeBatches):
        async def upload(self, data: bytes) -> str:
            raise BatchError("AuthenticationError: invalid_api_key", 401)

    fake, rows = Refusing(), list[CallRecord]()
    await runner_for(fake, rows).run_cell(cell(5))
    assert [r.error for r in rows] == ["AuthenticationError: invalid_api_key"] * 5
    assert all(r.http_status == 401 and r.cost_usd is None for r in rows)


async def test_a_resumed_cell_reattaches_to_its_batch_instead_of_submitting_again(tmp_path: Path) -> None:
    ledger, spec = tmp_path / "batches.jsonl", cell(12)
    first, rows = FakeBatches(polls=10**6), list[CallRecord]()
    runner = runner_for(first, rows, ledger)
    runner.grace_s = 0.0
    first.on_create = runner.stop.set  # interrupted as soon as the batch exists

    meta = await runner.run_cell(spec)
    assert rows == []
    assert meta.interrupted
    assert len(first.created) == 1

    first.polls = 1  # the batch has finished meanwhile; a new process asks again
    rows_after: list[CallRecord] = []
    await runner_for(first, rows_after, ledger).run_cell(spec)
    assert len(first.created) == 1  # no second batch
    assert sorted(r.call_id for r in rows_after) == sorted(c.call_id for c in spec.calls)
    assert all(r.status == "ok" for r in rows_after)


@pytest.mark.parametrize(
    ("is_mock", "created", "error"),
    [
        pytest.param(True, 1, "", id="mock-restarted-so-submit-again"),
        pytest.param(False, 0, "batch_lost: NotFoundError: not_found", id="real-endpoint-never-pays-twice"),
    ],
)
async def test_a_resumed_batch_the_endpoint_no_longer_knows(
    tmp_path: Path, is_mock: bool, created: int, error: str
) -> None:
    ledger, spec = tmp_path / "batches.jsonl", cell(6)
    BatchLedger(ledger).add(
        "unit/batch_api/1", BatchInfo(id="batch_99", status="validating"), "file-x", [c.call_id for c in spec.calls]
    )
    fake, rows = FakeBatches(), list[CallRecord]()
    endpoint = Endpoint(base_url=ENDPOINT.base_url, api_key="unit-test-key", is_mock=is_mock)
    await runner_for(fake, rows, ledger, endpoint).run_cell(spec)
    assert len(fake.created) == created
    assert sorted(r.call_id for r in rows) == sorted(c.call_id for c in spec.calls)
    assert {r.error for r in rows} == {error}


async def test_a_missing_output_file_is_an_error_row_not_a_model_name_to_check(tmp_path: Path) -> None:
    fake, rows = FakeBatches(), list[CallRecord]()

    async def missing(file_id: str) -> bytes:
        raise BatchError("NotFoundError: not_found", 404)

    fake.content = missing  # type: ignore[method-assign]
    runner = runner_for(fake, rows, tmp_path / "batches.jsonl")
    await runner.run_cell(cell(6))
    assert len(rows) == 6
    assert {(r.http_status, r.error) for r in rows} == {(404, "batch_results_unreadable: NotFoundError: not_found")}
    assert runner.fatal is None  # a lost file is this batch's, not "check the model name" for the whole run
