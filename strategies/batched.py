"""Chunks of C ("100 at a time"): each chunk is gathered before the next starts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


class Batched:
    name: ClassVar[str] = "batched"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="batches", order=5)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        size = knobs.concurrency
        for first in range(0, len(calls), size):
            if sender.stopping:
                return
            # Each batch waits for its slowest call: the straggler cost this strategy shows.
            await asyncio.gather(*(sender.send(call) for call in calls[first : first + size]))
