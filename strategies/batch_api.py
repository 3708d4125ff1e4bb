"""OpenAI's Batch API: upload the calls as JSONL, create batches, poll with back-off, read the results.

No chat completion is sent. Rows: ``scheduled_s``/``start_s`` = submission, ``end_s`` = when the
batch's results were in our hands. Batches left open by an interrupt are in the ledger, and the
resumed cell re-attaches to them instead of submitting their calls again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from bench.clients.base import Outcome
from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits

if TYPE_CHECKING:
    from bench.clients.batch import BatchAccess, BatchInfo

POLL_FIRST_S: Final = 0.25
POLL_FACTOR: Final = 1.5
POLL_MAX_S: Final = 30.0
POLL_FAILURES: Final = 5  # consecutive failed polls before the batch's calls become error rows


@dataclass(kw_only=True)
class _Job:
    batch_id: str
    calls: list[Call]
    submitted_s: float
    attached_s: float  # this process's start on it: the submission, or the re-attach of a resumed run
    resumed: bool = False  # re-attached from the ledger of an earlier process


class BatchApi:
    name: ClassVar[str] = "batch_api"
    # batch: the runner hands it ``sender.batches`` and no chat client
    traits: ClassVar[Traits] = Traits(levels="one", ideal="all", batch=True, order=90)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        access = sender.batches
        assert access is not None, "batch_api given no batch client"
        by_id = {call.call_id: call for call in calls}
        jobs: list[_Job] = []
        for entry in access.ledger.entries(access.cell):  # re-attach: those calls are paid for already
            mine = [by_id.pop(call_id) for call_id in entry.call_ids if call_id in by_id]
            if mine:
                # Submitted by an earlier process: on this cell's clock, that was this long ago.
                ago = max(0.0, time.time() - entry.submitted_at)
                now = sender.now()
                jobs.append(
                    _Job(batch_id=entry.batch_id, calls=mine, submitted_s=now - ago, attached_s=now, resumed=True)
                )
        pending = list(by_id.values())
        while pending or jobs:
            jobs += await self._submit(pending, sender, access)
            lost = await asyncio.gather(*(self._follow(job, sender, access) for job in jobs))
            pending, jobs = [call for calls_lost in lost for call in calls_lost], []

    async def _submit(self, calls: Sequence[Call], sender: Sender, access: BatchAccess) -> list[_Job]:
        """Upload and create one batch per chunk that fits the limits; the ledger hears of each at once."""
        from bench.clients import batch as api  # the SDK, only when a batch cell runs

        by_id = {call.call_id: call for call in calls}
        lines = [(c.call_id, api.batch_line(access.endpoint, access.settings, c)) for c in calls]
        jobs: list[_Job] = []
        for chunk in api.chunks(lines, access.client.limits):
            if sender.stopping:
                break
            chunk_calls = [by_id[call_id] for call_id, _ in chunk]
            submitted = sender.now()
            try:
                file_id = await access.client.upload(b"".join(line for _, line in chunk))
                info = await access.client.create(file_id)
            except api.BatchError as exc:
                failed = Outcome(ok=False, http_status=exc.http_status, error=str(exc))
                job = _Job(batch_id="", calls=chunk_calls, submitted_s=submitted, attached_s=submitted)
                self._close(sender, access, job, {}, failed)
                continue
            access.ledger.add(access.cell, info, file_id, (c.call_id for c in chunk_calls))
            jobs.append(_Job(batch_id=info.id, calls=chunk_calls, submitted_s=submitted, attached_s=submitted))
        return jobs

    async def _follow(self, job: _Job, sender: Sender, access: BatchAccess) -> list[Call]:
        """Poll until the batch ends, then write one row per call (none if the run stops first).

        Returns the calls to submit again: only those of a resumed batch that a mock no longer knows
        (it restarted with the run); a real endpoint's lost batch becomes error rows, never a second bill.
        """
        from bench.clients import batch as api

        wait, failures = POLL_FIRST_S, 0
        info: BatchInfo | None = None
        while info is None or not info.finished:
            if info is not None or failures:
                if not await _sleep(wait, sender):
                    return []  # interrupted: the batch stays open in the ledger; a resume re-attaches
                wait = min(POLL_MAX_S, wait * POLL_FACTOR)
            try:
                info = await access.client.retrieve(job.batch_id)
                failures = 0
            except api.BatchError as exc:
                failures += 1
                if exc.http_status == 404 and job.resumed and access.endpoint.is_mock:
                    return job.calls
                if exc.http_status == 404 or failures >= POLL_FAILURES:
                    failed = Outcome(ok=False, http_status=exc.http_status, error=f"batch_lost: {exc}")
                    self._close(sender, access, job, {}, failed)
                    return []
        results: dict[str, Outcome] = {}
        asks = {call.call_id: call.ask for call in job.calls}
        try:
            for file_id in (info.output_file_id, info.error_file_id):
                if file_id:
                    data = await access.client.content(file_id)
                    results.update(api.result_outcomes(data, access.endpoint.api_key, asks))
        except api.BatchError as exc:
            missing = Outcome(ok=False, http_status=exc.http_status, error=f"batch_results_unreadable: {exc}")
        else:
            detail = f": {info.errors}" if info.errors else ""
            missing = Outcome(ok=False, http_status=None, error=f"batch_{info.status}{detail}")
        self._close(sender, access, job, results, missing)
        return []

    @staticmethod
    def _close(
        sender: Sender,
        access: BatchAccess,
        job: _Job,
        results: dict[str, Outcome],
        missing: Outcome,
    ) -> None:
        """One row per call: its result, else ``missing`` (a failed, expired or cancelled batch).

        ``scheduled_s`` is the submission (earlier than the cell's start for a resumed batch), ``start_s``
        when this process took the batch on, so latency stays within the cell's wall time.
        """
        end = sender.now()
        for call in job.calls:
            sender.record(
                call,
                results.get(call.call_id, missing),
                scheduled_s=job.submitted_s,
                start_s=job.attached_s,
                end_s=end,
                price_factor=access.price_factor,
            )


async def _sleep(seconds: float, sender: Sender) -> bool:
    """Sleep, waking early to return False once the run is stopping."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while not sender.stopping:
        left = until - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, 0.1))
    return False
