"""Measure a call's timing only while this process got the CPU: a busy machine may spoil a sample, not a test.

A client reads each chunk's arrival time when its event loop runs. If the machine takes the CPU away
(other xdist workers, other jobs) the loop reads several chunks late and at once, and a timing the
server enforced looks broken. A probe sleeping in the same loop sees that stall; a sample taken
during one is measured again, and the bounds judge only samples the probe saw run on time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
TICK_S = 0.005
MAX_STALL_S = 0.02  # the loop woke this late at worst: below the slack of the bounds judged
ATTEMPTS = 8


async def _probe(worst: list[float]) -> None:
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(TICK_S)
        worst[0] = max(worst[0], time.perf_counter() - asked - TICK_S)


async def unstalled(measure: Callable[[], Awaitable[T]]) -> T:
    """``measure()`` again while the loop stalled over ``MAX_STALL_S`` during it (the last sample, at worst)."""
    for _ in range(ATTEMPTS):
        worst = [0.0]
        probe = asyncio.create_task(_probe(worst))
        try:
            sample = await measure()
        finally:
            probe.cancel()
        if worst[0] <= MAX_STALL_S:
            break
    return sample
