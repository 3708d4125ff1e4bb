"""Judge a timing only on samples the machine did not stall: a busy machine may spoil a sample, not a test.

The mock streams on an absolute clock, and the client reads each chunk when its event loop runs. If
the machine takes the CPU from either process (other xdist workers, other jobs) before the first
token, the first chunk arrives late and the rest catch up at once, so the time between the first and
the last token shrinks although the server kept its schedule. Such a sample shows itself (its first
token came late); it is measured again, and the bounds judge a sample that came on time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
ATTEMPTS = 8


async def remeasured(measure: Callable[[], Awaitable[T]], on_time: Callable[[T], bool]) -> T:
    """``measure()`` again while ``on_time`` rejects the sample; the last sample at worst, for the bounds to judge."""
    sample = await measure()
    for _ in range(ATTEMPTS - 1):
        if on_time(sample):
            break
        sample = await measure()
    return sample
