"""A pool of C worker threads, each calling the blocking ``OpenAI`` client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


class Threads:
    name: ClassVar[str] = "threads"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="window", blocking=True, order=1)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        pool = ThreadPoolExecutor(max_workers=knobs.concurrency, thread_name_prefix="bench-call")
        try:
            futures = [pool.submit(sender.send_blocking, call) for call in calls]
            # Waiting in the event loop (not blocking it) keeps interrupts and progress responsive.
            await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        finally:
            # Not ``with``: on cancel (an interrupt) its shutdown(wait=True) would block the event
            # loop until every call in flight ended; the runner abandons those calls instead.
            pool.shutdown(wait=False, cancel_futures=True)
