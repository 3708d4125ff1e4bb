"""A sliding window: ``asyncio.Semaphore(C)`` around gather, the next call starts as one ends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import IdealRule, Knobs, Levels, Sender


class Semaphore:
    name: ClassVar[str] = "semaphore"
    blocking: ClassVar[bool] = False
    levels: ClassVar[Levels] = "given"
    ideal: ClassVar[IdealRule] = "window"
    needs_rate: ClassVar[bool] = False
    order: ClassVar[int] = 3

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        window = asyncio.Semaphore(knobs.concurrency)

        async def bounded(call: Call) -> None:
            async with window:
                await sender.send(call)

        await asyncio.gather(*(bounded(call) for call in calls))
