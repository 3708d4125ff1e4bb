"""A Ray worker: runs its share of a cell with the engine's own Runner and streams the rows back.

This module does not import Ray: the driver wraps ``CellWorker`` with ``ray.remote``, so the
class stays a plain, testable object.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import Call
from bench.core.records import CallRecord
from bench.engine.runner import CellMeta, CellSpec, Runner


@dataclass(frozen=True, kw_only=True)
class ShareStarted:
    """The worker's wall clock (``time.time``) at its share's time origin."""

    origin_wall: float


@dataclass(frozen=True, kw_only=True)
class ShareDone:
    meta: CellMeta
    fatal: str | None = None
    cpu_s: float = 0.0  # the worker process's CPU time over its share


Item = ShareStarted | list[CallRecord] | ShareDone


class CellWorker:
    """One worker process; the same strategy code as a local run, over its share of calls and C."""

    def __init__(
        self,
        *,
        index: int,
        run_id: str,
        endpoint: Endpoint,
        settings: RequestSettings,
        client_name: str,
        grace_s: float,
    ) -> None:
        self._run_id, self._endpoint, self._settings = run_id, endpoint, settings
        self._client_name, self._grace_s = client_name, grace_s
        self._stop = threading.Event()
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

    async def run_share(self, spec: CellSpec, calls: tuple[Call, ...], flush_s: float) -> AsyncIterator[Item]:
        """Yield ``ShareStarted``, then batches of rows every ``flush_s``, then ``ShareDone``."""
        self._stop.clear()
        cpu = time.process_time()
        rows: list[CallRecord] = []
        started = asyncio.Event()
        origin: list[float] = []

        def on_origin(t0: float) -> None:
            origin.append(time.time() - (time.perf_counter() - t0))
            started.set()

        runner = Runner(
            run_id=self._run_id,
            endpoint=self._endpoint,
            settings=self._settings,
            emit=rows.append,  # list.append is atomic, so threads strategies may emit too
            stop=self._stop,
            grace_s=self._grace_s,
            on_origin=on_origin,
            **CLIENTS[self._client_name].runner_factories(),
        )
        task = asyncio.ensure_future(runner.run_cell(spec, calls))
        waiter = asyncio.ensure_future(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if origin:
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
