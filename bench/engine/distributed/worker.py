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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bench.core.calls import Call
from bench.core.records import CallRecord
from bench.engine.runner import CellMeta, CellSpec, RunnerConfig


@dataclass(frozen=True, kw_only=True)
class ShareReady:
    """The worker's client is made (and warm): it waits for ``CellWorker.go`` to start its clock."""


@dataclass(frozen=True, kw_only=True)
class ShareStarted:
    """The worker's wall clock (``time.time``) at its share's time origin."""

    origin_wall: float


@dataclass(frozen=True, kw_only=True)
class ShareDone:
    meta: CellMeta
    fatal: str | None = None
    cpu_s: float = 0.0  # the worker process's CPU time over its share


Item = ShareReady | ShareStarted | list[CallRecord] | ShareDone


class CellWorker:
    """One worker process; the same strategy code as a local run, over its share of calls and C."""

    def __init__(self, *, index: int, config: RunnerConfig) -> None:
        self._config = config
        self._stop = threading.Event()
        self._go = asyncio.Event()
        self._start_wall: float | None = None
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

    async def go(self, start_wall: float) -> None:
        """Start the waiting share's clock at ``start_wall`` (this worker's ``time.time``)."""
        self._start_wall = start_wall
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
        self, spec: CellSpec, calls: tuple[Call, ...], flush_s: float, seed: int = 0
    ) -> AsyncIterator[Item]:
        """Yield ``ShareReady``, ``ShareStarted`` (once ``go`` is called), batches of rows every ``flush_s``,
        then ``ShareDone``; ``seed`` draws the share's own open-loop arrivals."""
        self._stop.clear()
        self._go.clear()
        self._start_wall = None
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
        while not task.done():
            await asyncio.wait({task}, timeout=flush_s)
            if rows:
                batch = rows[:]
                del rows[: len(batch)]
                yield batch
        meta = task.result()
        if rows:
            yield rows[:]
        yield ShareDone(meta=meta, fatal=runner.fatal, cpu_s=time.process_time() - cpu)

    @staticmethod
    async def _first(task: asyncio.Future[CellMeta], event: asyncio.Event) -> bool:
        """Wait for ``event`` or the end of ``task``; whether ``event`` is set."""
        waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return event.is_set()
