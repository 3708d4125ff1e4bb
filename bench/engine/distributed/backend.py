"""The Ray backend: each cell's calls split over W worker actors, rows streamed back to the driver.

The driver keeps the run folder: it writes every row (times moved to the cell's one origin,
``concurrency`` the cell's C, ``worker`` the sender), resets and reads the endpoint's stats,
and makes sure every call ends as exactly one row. A worker that dies mid-cell is replaced
once and its unfinished calls are sent again; if that fails too they become ``worker_lost``
error rows. Rows already received are kept, and a call is never written twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bench.clients.pool import RoutedEndpoint, stated_total
from bench.core.calls import Call
from bench.core.records import CANCELLED, CallRecord
from bench.engine.distributed.clock import ClockOffset, best_offset
from bench.engine.distributed.cluster import RayUnavailable, import_ray
from bench.engine.distributed.shares import peak_overlap, share_rate, split_calls, split_concurrency, worker_count
from bench.engine.distributed.worker import CellWorker, RowBatch, ShareDone, ShareReady, ShareStarted
from bench.engine.runner import CellMeta, CellSpec, Emit, EmitsRows, RunnerConfig, StatsProbe
from strategies import STRATEGIES
from strategies.arrivals import ArrivalShare, OpenLoop

WORKER_LOST: Final = "worker_lost"
CLOCK_PINGS: Final = 5
READY_TIMEOUT_S: Final = 120.0
START_LEAD_S: Final = 0.05  # from the driver's "go" to the cell's first instant: time for the message to arrive


class WorkerLost(Exception):
    """A worker process died (or could not start) while it held calls."""


def lost_record(run_id: str, spec: CellSpec, call: Call, at: float, worker: str) -> CallRecord:
    """The row of a call whose worker died and could not be replaced: it may or may not have been sent."""
    return CallRecord(
        **spec.identity(run_id, call),
        scheduled_s=at,
        start_s=at,
        end_s=at,
        latency_s=0.0,
        status="error",
        http_status=None,
        error=WORKER_LOST,
        attempts=0,
        prompt_tokens=None,
        completion_tokens=None,
        answer="",
        worker=worker,
    )


@dataclass
class _Cell:
    """What the driver keeps while one cell runs."""

    spec: CellSpec
    origin_wall: float  # both set again when the clock starts (every share ready, after its warm-up)
    t0: float
    emit: Emit
    waiting: int  # shares not yet ready to start
    started: asyncio.Event = field(default_factory=asyncio.Event)
    written: set[str] = field(default_factory=set)
    intervals: list[tuple[float, float]] = field(default_factory=list)
    duplicates: int = 0
    finished_s: float | None = None  # the end of the last call that finished (cancelled rows aside)
    cancelled: int = 0


@dataclass(kw_only=True)
class RayRunner:
    """Implements ``bench.engine.runner.CellRunner`` over Ray actors (one process each)."""

    config: RunnerConfig  # what each worker builds its runner from (its seed drawn per share)
    workers: int
    emit: Emit = field(default=lambda record: None)  # where rows go unless ``run_cell`` is given a sink
    stop: threading.Event = field(default_factory=threading.Event)
    probe: StatsProbe | None = None
    fatal: str | None = None
    flush_s: float = 0.05
    attempts: int = 2  # workers a share may use: the first, then one replacement if it dies
    replaced: int = 0
    _actors: list[Any] = field(default_factory=list, init=False, repr=False)

    def _new_actor(self, index: int) -> Any:
        ray = import_ray()
        remote = ray.remote(CellWorker).options(num_cpus=1, scheduling_strategy="SPREAD")
        return remote.remote(index=index, config=self.config)

    async def _ready(self, actor: Any) -> str:
        label: str = await asyncio.wait_for(asyncio.wrap_future(actor.label.remote().future()), READY_TIMEOUT_S)
        return label

    async def actor(self, index: int) -> Any:
        """Worker ``index``, started (and waited for) on first use."""
        while len(self._actors) <= index:
            self._actors.append(None)
        if self._actors[index] is None:
            actor = self._new_actor(index)
            try:
                await self._ready(actor)
            except BaseException:
                import_ray().kill(actor)  # a worker still pending (no free CPU) must not start later
                raise
            self._actors[index] = actor
        return self._actors[index]

    async def _offset(self, actor: Any) -> ClockOffset:
        samples = []
        for _ in range(CLOCK_PINGS):
            sent = time.time()
            remote: float = await actor.clock.remote()
            samples.append((sent, remote, time.time()))
        return best_offset(samples)

    def close(self) -> None:
        """End every worker process (the driver owns them)."""
        ray = import_ray()
        for actor in self._actors:
            if actor is not None:
                ray.kill(actor)
        self._actors.clear()

    async def run_cell(
        self, spec: CellSpec, calls: Sequence[Call] | None = None, *, emit: Emit | None = None
    ) -> CellMeta:
        """Run ``spec`` (over ``calls`` when given) as W shares of the calls and of C; rows go to ``emit``."""
        todo = spec.calls if calls is None else tuple(calls)
        parts = worker_count(self.workers, spec.concurrency, len(todo))
        shares, levels = split_calls(todo, parts), split_concurrency(spec.concurrency, parts)
        ray = import_ray()
        for index in range(parts):
            try:
                await self.actor(index)
            except TimeoutError:
                raise RayUnavailable(
                    f"Ray worker {index} did not start within {READY_TIMEOUT_S:g} s (no free CPU in the cluster?)"
                ) from None
            except ray.exceptions.RayError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RayUnavailable(
                    f"Ray worker {index} could not start ({first}); is this package installed on every node?"
                ) from None
        rpm, tpm = self._limits(spec)
        whole = dataclasses.replace(spec, rpm=rpm, tpm=tpm)
        cell = _Cell(spec=spec, origin_wall=time.time(), t0=time.perf_counter(), emit=emit or self.emit, waiting=parts)
        watcher = asyncio.ensure_future(self._halt_on_stop())
        try:
            reports = await asyncio.gather(
                *(
                    self._run_share(cell, index, *self._share_spec(whole, share, level, len(todo), index, parts))
                    for index, (share, level) in enumerate(zip(shares, levels, strict=True))
                )
            )
        finally:
            watcher.cancel()
        wall = time.perf_counter() - cell.t0
        server = await asyncio.to_thread(self.probe.stats) if self.probe is not None else None
        return CellMeta(
            scenario=spec.scenario,
            strategy=spec.strategy,
            concurrency=spec.concurrency,
            calls=len(spec.calls),
            sent=sum(int(report["sent"]) for report in reports),
            wall_s=wall,
            max_in_flight=peak_overlap(cell.intervals),
            server=server,
            interrupted=self.stop.is_set(),
            finished_s=cell.finished_s,
            cancelled=cell.cancelled,
            workers=reports,
            learned_rpm=sum(r["learned_rpm"] for r in reports if r.get("learned_rpm")) or None,
            paced_rpm=rpm,
            paced_tpm=tpm,
        )

    def _limits(self, spec: CellSpec) -> tuple[float | None, float | None]:
        """The cell's whole rate limit: --rpm/--tpm, else the sum its endpoints state (as the local runner)."""
        config = self.config
        stated = config.pool or (
            RoutedEndpoint(endpoint=config.endpoint, label="", rpm=config.endpoint_rpm, tpm=config.endpoint_tpm),
        )
        rpm = spec.rpm if spec.rpm is not None else stated_total([e.rpm for e in stated])
        tpm = spec.tpm if spec.tpm is not None else stated_total([e.tpm for e in stated])
        return rpm, tpm

    def _share_spec(
        self, spec: CellSpec, share: tuple[Call, ...], level: int, whole: int, index: int, parts: int
    ) -> tuple[CellSpec, ArrivalShare | None]:
        """A worker's cell: its calls, its share of C, of the rate limit and of the open-loop arrivals."""
        strategy = STRATEGIES[spec.strategy]()
        arrivals = (
            strategy.share(index, parts, spec.rate, self.config.seed)
            if isinstance(strategy, OpenLoop) and spec.rate
            else None
        )
        cell = dataclasses.replace(
            spec,
            calls=share,
            concurrency=level,
            rpm=share_rate(spec.rpm, len(share), whole),
            tpm=share_rate(spec.tpm, len(share), whole),
            rate=arrivals.rate if arrivals is not None else spec.rate,
        )
        return cell, arrivals

    async def _arrive(self, cell: _Cell, *, wait: bool = True) -> None:
        """A share is ready (or gone for good): the cell's clock starts once every share is, as one."""
        cell.waiting -= 1
        if cell.waiting == 0:
            if self.probe is not None:  # what the workers' warm-up sent is not the cell's
                await asyncio.to_thread(self.probe.reset_stats)
            cell.origin_wall, cell.t0 = time.time() + START_LEAD_S, time.perf_counter() + START_LEAD_S
            cell.started.set()
        if wait:
            await cell.started.wait()

    async def _halt_on_stop(self) -> None:
        # ``stop`` is a threading.Event (set by signal handlers and fatal answers): poll it.
        while not self.stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for actor in self._actors:
            if actor is not None:
                actor.halt.remote()

    async def _run_share(
        self, cell: _Cell, index: int, share: CellSpec, arrivals: ArrivalShare | None
    ) -> dict[str, Any]:
        """One worker's share to the end: sent again once by a fresh worker if its worker dies."""
        arrived = False

        async def start_wall() -> float:
            """When this worker's clock starts, on the driver's wall clock."""
            nonlocal arrived
            if arrived:  # a replacement, mid-cell: it starts at once
                return time.time()
            arrived = True
            await self._arrive(cell)
            return cell.origin_wall + (arrivals.delay_s if arrivals is not None else 0.0)

        try:
            return await self._send_share(cell, index, share, arrivals, start_wall)
        finally:
            if not arrived:  # gone before it was ready: the others start without it
                await self._arrive(cell, wait=False)

    async def _send_share(
        self,
        cell: _Cell,
        index: int,
        share: CellSpec,
        arrivals: ArrivalShare | None,
        start_wall: Callable[[], Awaitable[float]],
    ) -> dict[str, Any]:
        ray = import_ray()
        pending = {call.call_id: call for call in share.calls}
        report: dict[str, Any] = {"index": index, "calls": len(share.calls), "concurrency": share.concurrency}
        report.update(sent=0, peak_in_flight=0, lost=0, replaced=0, labels=[], clock_error_s=0.0, cpu_s=0.0)
        if arrivals is not None:
            report.update(rate=arrivals.rate, delay_s=arrivals.delay_s)
        seed = arrivals.seed if arrivals is not None else self.config.seed
        for attempt in range(self.attempts):
            if not pending or (attempt and self.stop.is_set()):
                break
            before = len(pending)
            try:
                if attempt:
                    self.replaced += 1
                    report["replaced"] += 1
                    self._actors[index] = None
                actor = await self.actor(index)
                label = await actor.label.remote()
                offset = await self._offset(actor)
                report["labels"].append(label)
                report["clock_offset_s"] = offset.offset_s
                report["clock_error_s"] = max(report["clock_error_s"], offset.error_s)
                done = await self._stream(cell, actor, share, pending, label, offset, seed, start_wall)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, TimeoutError, WorkerLost):
                report["sent"] += before - len(pending)  # rows that came back; what was in flight is unknown
                continue  # the worker died: its unfinished calls are still in ``pending``
            report["sent"] += done.meta.sent
            report["cpu_s"] += done.cpu_s
            report["peak_in_flight"] = max(report["peak_in_flight"], done.meta.max_in_flight)
            report["learned_rpm"] = done.meta.learned_rpm  # each worker learns its share of the limit
            if done.fatal is not None and self.fatal is None:
                self.fatal = done.fatal
                self.stop.set()
            break
        if pending and not self.stop.is_set():  # no worker left to send them: one error row each
            at = time.perf_counter() - cell.t0
            for call in pending.values():
                self._write(cell, lost_record(self.config.run_id, cell.spec, call, at, WORKER_LOST))
            report["lost"] = len(pending)
        return report

    async def _stream(
        self,
        cell: _Cell,
        actor: Any,
        share: CellSpec,
        pending: dict[str, Call],
        label: str,
        offset: ClockOffset,
        seed: int,
        start_wall: Callable[[], Awaitable[float]],
    ) -> ShareDone:
        """Send ``pending`` to ``actor``, start its clock when the cell's starts, write its rows as they arrive."""
        calls = tuple(pending.values())
        stream = actor.run_share.options(num_returns="streaming").remote(
            share, calls, self.flush_s, seed, cell.spec.concurrency
        )
        shift = 0.0
        async for ref in stream:
            item = await ref
            if isinstance(item, ShareReady):
                starts = await start_wall()  # the cell's origin is fixed once this returns
                actor.go.remote(starts + offset.offset_s, cell.origin_wall + offset.offset_s)
            elif isinstance(item, ShareStarted):
                # the worker's origin on the driver's wall clock, minus the cell's origin
                shift = item.origin_wall - offset.offset_s - cell.origin_wall
            elif isinstance(item, ShareDone):
                return item
            elif isinstance(item, RowBatch):
                for record in self._write_batch(cell, item):
                    pending.pop(record.call_id, None)
            else:
                for record in item:
                    moved = dataclasses.replace(
                        record,
                        concurrency=cell.spec.concurrency,
                        scheduled_s=record.scheduled_s + shift,
                        start_s=record.start_s + shift,
                        end_s=record.end_s + shift,
                        worker=label,
                    )
                    if self._write(cell, moved):
                        pending.pop(record.call_id, None)
        raise WorkerLost(f"worker {label} ended its stream without a summary")

    def _write_batch(self, cell: _Cell, batch: RowBatch) -> list[CallRecord]:
        """A worker's batch, on the cell's clock and formatted already: appended as it is unless a row of it
        was written before (a replacement worker's), then row by row; the records written."""
        fresh = [record for record in batch.records if record.call_id not in cell.written]
        if len(fresh) < len(batch.records) or not isinstance(cell.emit, EmitsRows):
            return [record for record in batch.records if self._write(cell, record)]
        for record in fresh:
            cell.written.add(record.call_id)
            cell.intervals.append((record.start_s, record.end_s))
        cell.emit.rows(fresh, batch.text)
        return fresh

    def _write(self, cell: _Cell, record: CallRecord) -> bool:
        if record.call_id in cell.written:
            cell.duplicates += 1
            return False
        cell.written.add(record.call_id)
        cell.intervals.append((record.start_s, record.end_s))
        if record.status == CANCELLED:
            cell.cancelled += 1
        else:
            cell.finished_s = record.end_s if cell.finished_s is None else max(cell.finished_s, record.end_s)
        cell.emit(record)
        return True
