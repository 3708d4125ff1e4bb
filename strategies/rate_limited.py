"""A steady request (and token) rate with aiolimiter, optionally capped at C in flight.

aiolimiter's bucket starts empty and holds ``max_rate`` units, so ``AsyncLimiter(R, 60)``
lets a whole minute's worth through at once. Here each bucket holds one request (or one
request's tokens): the rate is spread evenly from the first call, and the endpoint's own
bucket never sees a burst.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from aiolimiter import AsyncLimiter

from bench.workload import Call, estimate_prompt_tokens
from strategies.base import Knobs, Sender


def call_tokens(call: Call, max_tokens: int) -> int:
    """Tokens a call counts against a TPM limit at admission (prompt estimate + max_tokens)."""
    return estimate_prompt_tokens(call.messages) + max_tokens


def intended_schedule(calls: Sequence[Call], knobs: Knobs) -> list[float]:
    """When each call should start if the limits alone decided (seconds from the start)."""
    times: list[float] = []
    tokens_before = 0
    for index, call in enumerate(calls):
        at = 0.0
        if knobs.rpm:
            at = index * 60.0 / knobs.rpm
        if knobs.tpm:
            at = max(at, tokens_before * 60.0 / knobs.tpm)
        times.append(at)
        tokens_before += call_tokens(call, knobs.max_tokens)
    return times


class RateLimited:
    name: ClassVar[str] = "rate_limited"
    blocking: ClassVar[bool] = False

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        if not knobs.rpm and not knobs.tpm:
            raise ValueError("rate_limited needs --rpm and/or --tpm")
        requests = AsyncLimiter(1, 60.0 / knobs.rpm) if knobs.rpm else None
        biggest = max(call_tokens(c, knobs.max_tokens) for c in calls) if calls else 1
        tokens = AsyncLimiter(biggest, biggest * 60.0 / knobs.tpm) if knobs.tpm else None
        window = asyncio.Semaphore(knobs.concurrency)
        schedule = intended_schedule(calls, knobs)
        origin = sender.now()
        in_progress: set[asyncio.Task[object]] = set()

        for call, at in zip(calls, schedule, strict=True):
            await window.acquire()
            if requests is not None:
                await requests.acquire()
            if tokens is not None:
                await tokens.acquire(call_tokens(call, knobs.max_tokens))
            if sender.stopping:
                window.release()
                break
            task = asyncio.create_task(sender.send(call, scheduled_s=origin + at))
            in_progress.add(task)
            task.add_done_callback(lambda t: (in_progress.discard(t), window.release()))
        if in_progress:
            await asyncio.gather(*in_progress)
