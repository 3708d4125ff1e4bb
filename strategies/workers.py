"""C worker tasks pulling from one iterator: a sliding window without N tasks up front."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


class Workers:
    name: ClassVar[str] = "workers"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="window", order=4)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        pending = iter(calls)

        async def worker() -> None:
            for call in pending:
                if sender.stopping:
                    return
                await sender.send(call)

        await asyncio.gather(*(worker() for _ in range(min(knobs.concurrency, len(calls)))))
