"""A Ray worker: runs its share of a cell with the engine's own Runner and streams the rows back.

This module does not import Ray: the driver wraps ``CellWorker`` with ``ray.remote``, so the
class stays a plain, testable object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.core.calls import Call
from bench.core.records import CallRecord, format_rows
from bench.engine.runner import CellMeta, CellSpec, RunnerConfig


@dataclass(frozen=True, kw_only=True)
class ShareReady:
    """The worker's client is made (and warm): it waits for ``CellWorker.go`` to start its clock."""


@dataclass(frozen=True, kw_only=True)
class ShareStarted:
    """The worker's wall clock (``time.time``) at its share's time origin."""

    origin_wall: float


@dataclass(frozen=True, kw_only=True)
class RowBatch:
    """Rows as the driver writes them: on the cell's clock, stamped with the worker and the cell's C, and
    formatted as calls.csv lines here (``text``), so that the driver appends them instead of formatting."""

    records: list[CallRecord]
    text: str


@dataclass(frozen=True, kw_only=True)
class ShareDone:
    meta: CellMeta
    fatal: str | None = None
    cpu_s: float = 0.0  # the worker process's CPU time over its share


Item = ShareReady | ShareStarted | list[CallRecord] | RowBatch | ShareDone


class CellWorker:
    """One worker process; the same strategy code as a local run, over its share of calls and C."""

    def __init__(self, *, index: int, config: RunnerConfig) -> None:
        self._config = config
        self._stop = threading.Event()
        self._go = asyncio.Event()
        self._start_wall: float | None = None
        self._cell_origin: float | None = None  # the cell's start on this worker's wall clock
        self._label = f"w{index}@{socket.gethostname()}:{os.getpid()}"

    async def label(self) -> str:
        return self._label

    async def pid(self) -> int:
        return os.getpid()

    async def clock(self) -> float:
        return time.time()

    async def halt(self) -> None:
        """Stop issuing calls (calls in flight get the grace period, as in a local run)."""
        self._stop.set()
        self._go.set()  # a share still waiting to start starts now, and sends nothing

    async def go(self, start_wall: float, cell_origin: float | None = None) -> None:
        """Start the waiting share's clock at ``start_wall`` (this worker's ``time.time``); with
        ``cell_origin`` (the cell's start, on this clock) the worker puts its rows on the cell's clock
        and formats them itself (``RowBatch``)."""
        self._start_wall = start_wall
        self._cell_origin = cell_origin
        self._go.set()

    async def _origin(self, ready: asyncio.Event) -> float:
        """The share's time origin: once told when, wait for it (the cell's one start, after every warm-up)."""
        ready.set()
        await self._go.wait()
        if self._start_wall is None:
            return time.perf_counter()
        t0 = time.perf_counter() + (self._start_wall - time.time())
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        return t0

    async def run_share(
        self, spec: CellSpec, calls: Sequence[Call], flush_s: float, seed: int = 0, cell_concurrency: int | None = None
    ) -> AsyncIterator[Item]:
        """Yield ``ShareReady``, ``ShareStarted`` (once ``go`` is called), batches of rows every ``flush_s``,
        then ``ShareDone``; ``seed`` draws the share's own open-loop arrivals. Batches are ``RowBatch``es
        when ``go`` gave the cell's origin and ``cell_concurrency`` is given, else lists of records."""
        self._stop.clear()
        self._go.clear()
        self._start_wall = None
        self._cell_origin = None
        cpu = time.process_time()
        rows: list[CallRecord] = []
        ready, started = asyncio.Event(), asyncio.Event()
        origin: list[float] = []

        def on_origin(t0: float) -> None:
            origin.append(time.time() - (time.perf_counter() - t0))
            started.set()

        runner = dataclasses.replace(self._config, seed=seed).runner(
            stop=self._stop,
            emit=rows.append,  # list.append is atomic, so threads strategies may emit too
            origin=lambda: self._origin(ready),
            on_origin=on_origin,
        )
        task = asyncio.ensure_future(runner.run_cell(spec, calls))
        if await self._first(task, ready):
            yield ShareReady()
        if await self._first(task, started):
            yield ShareStarted(origin_wall=origin[0])
        stamp = self._stamp(origin[0] if origin else None, cell_concurrency)
        while not task.done():
            await asyncio.wait({task}, timeout=flush_s)
            if rows:
                batch = rows[:]
                del rows[: len(batch)]
                yield stamp(batch)
        meta = task.result()
        if rows:
            yield stamp(rows[:])
        yield ShareDone(meta=meta, fatal=runner.fatal, cpu_s=time.process_time() - cpu)

    def _stamp(self, origin_wall: float | None, concurrency: int | None) -> Callable[[list[CallRecord]], Any]:
        """How a batch leaves: on the cell's clock and formatted (a ``RowBatch``), or as it is."""
        if origin_wall is None or self._cell_origin is None or concurrency is None:
            return lambda batch: batch
        shift, label = origin_wall - self._cell_origin, self._label  # the driver's shift, worked out here

        def stamped(batch: list[CallRecord]) -> RowBatch:
            moved = [
                dataclasses.replace(
                    record,
                    concurrency=concurrency,
                    scheduled_s=record.scheduled_s + shift,
                    start_s=record.start_s + shift,
                    end_s=record.end_s + shift,
                    worker=label,
                )
                for record in batch
            ]
            return RowBatch(records=moved, text=format_rows(moved))

        return stamped

    @staticmethod
    async def _first(task: asyncio.Future[CellMeta], event: asyncio.Event) -> bool:
        """Wait for ``event`` or the end of ``task``; whether ``event`` is set."""
        waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return event.is_set()
