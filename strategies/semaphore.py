"""A sliding window: ``asyncio.Semaphore(C)`` around gather, the next call starts as one ends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


class Semaphore:
    name: ClassVar[str] = "semaphore"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="window", order=3)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        window = asyncio.Semaphore(knobs.concurrency)

        async def bounded(call: Call) -> None:
            async with window:
                await sender.send(call)

        await asyncio.gather(*(bounded(call) for call in calls))
