"""A steady request (and token) rate with aiolimiter, optionally capped at C in flight.

aiolimiter's bucket starts empty and holds ``max_rate`` units, so ``AsyncLimiter(R, 60)``
lets a whole minute's worth through at once and the endpoint answers most of it 429. Here
each limiter holds only ``BURST_S`` seconds of its rate and is primed full before the first
call, so calls leave one interval apart from the very start. A strategy that falls behind (a
full window, a busy event loop) catches up by at most that burst, which an OpenAI-style
bucket (about a second of its rate) absorbs; without the burst, every late wake-up would be
lost and the rate would drift below the target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from aiolimiter import AsyncLimiter

from bench.clients.pool import Lane
from bench.core.calls import Call, estimate_prompt_tokens
from strategies.base import Knobs, Sender, Traits

BURST_S: Final = 0.25


def call_tokens(call: Call, max_tokens: int) -> int:
    """Tokens a call counts against a TPM limit at admission (prompt estimate + max_tokens)."""
    return estimate_prompt_tokens(call.messages) + max_tokens


@dataclass
class Schedule:
    """When a lane's calls are meant to start (seconds from the first): call i waits i request
    intervals, and for the tokens of calls 1..i (the first call's go at once)."""

    rpm: float | None
    tpm: float | None
    sent: int = 0
    tokens: int = 0

    def next(self, cost: int) -> float:
        if self.sent:
            self.tokens += cost
        at = self.sent * 60.0 / self.rpm if self.rpm else 0.0
        if self.tpm:
            at = max(at, self.tokens * 60.0 / self.tpm)
        self.sent += 1
        return at


async def primed_limiter(per_minute: float, largest: float, first: float) -> AsyncLimiter:
    """A limiter holding ``BURST_S`` of the rate (at least ``largest``), filled so only ``first`` fits."""
    capacity = max(float(largest), per_minute / 60.0 * BURST_S)
    limiter = AsyncLimiter(capacity, capacity * 60.0 / per_minute)
    if capacity > first:
        await limiter.acquire(capacity - first)  # the bucket is empty: this returns at once
    return limiter


class RateLimited:
    name: ClassVar[str] = "rate_limited"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="paced", needs_rate=True, order=6)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        """One limiter per endpoint (``Sender.lanes``), at most C in flight in all; each lane takes the
        next call whenever its own limiter lets one go, so shares follow the endpoints' rates."""
        lanes = sender.lanes
        if not any(lane.rpm or lane.tpm for lane in lanes):
            raise ValueError("rate_limited needs --rpm and/or --tpm")
        if not calls:
            return
        largest = max(call_tokens(call, knobs.max_tokens) for call in calls)
        window = asyncio.Semaphore(knobs.concurrency)
        todo = iter(calls)
        origin = sender.now()
        in_progress: set[asyncio.Task[object]] = set()

        def done(task: asyncio.Task[object]) -> None:
            in_progress.discard(task)
            window.release()

        async def pace(lane: Lane) -> None:
            requests: AsyncLimiter | None = None
            tokens: AsyncLimiter | None = None
            schedule = Schedule(rpm=lane.rpm, tpm=lane.tpm)
            while True:
                await window.acquire()
                call = next(todo, None)
                if call is None:
                    window.release()
                    return
                cost = call_tokens(call, knobs.max_tokens)
                if schedule.sent == 0:  # primed on the lane's first call, so that it leaves at once
                    requests = await primed_limiter(lane.rpm, 1, 1) if lane.rpm else None
                    tokens = await primed_limiter(lane.tpm, largest, cost) if lane.tpm else None
                at = schedule.next(cost)
                if requests is not None:
                    await requests.acquire()
                if tokens is not None:
                    await tokens.acquire(cost)
                if sender.stopping:
                    window.release()
                    return
                task = asyncio.create_task(sender.send(call, scheduled_s=origin + at, lane=lane.index))
                in_progress.add(task)
                task.add_done_callback(done)

        await asyncio.gather(*(pace(lane) for lane in lanes))
        if in_progress:
            await asyncio.gather(*in_progress)
