"""Open-loop sending: each call goes out at its arrival time, whatever is still in flight.

Arrival times are fixed (and seeded) before the cell starts, so the offered load does not bend
to the endpoint's answers, as it does for every closed-loop window. ``knobs.concurrency`` is
only a safety cap (``--max-in-flight``): when it binds, calls leave late and their
``scheduled_s`` (the arrival) stays before their ``start_s``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


def constant_times(count: int, rate: float) -> list[float]:
    """Evenly spaced arrivals, the first at 0."""
    return [k / rate for k in range(count)]


def poisson_times(count: int, rate: float, seed: int) -> list[float]:
    """A Poisson process: exponential gaps of mean 1/rate, the first arrival at 0."""
    draw = random.Random(f"poisson:{seed}")
    times, at = [], 0.0
    for _ in range(count):
        times.append(at)
        at += draw.expovariate(rate)
    return times


def stream_seed(seed: int, index: int) -> int:
    """The seed of sender ``index``'s own stream of arrivals, derived from the run's ``seed``."""
    return random.Random(f"stream:{seed}:{index}").getrandbits(63)


@dataclass(frozen=True, kw_only=True)
class ArrivalShare:
    """One of W senders' part of an open-loop schedule; the W parts merge into the arrivals asked."""

    rate: float
    seed: int
    delay_s: float = 0.0  # when this sender's clock starts, after the cell's


async def send_at(times: Sequence[float], calls: Sequence[Call], sender: Sender, cap: int) -> None:
    """Send each call at its time (seconds from the cell's start), at most ``cap`` in flight."""
    slots = asyncio.Semaphore(max(1, cap))
    tasks: list[asyncio.Task[None]] = []

    async def one(call: Call, at: float) -> None:
        try:
            await sender.send(call, scheduled_s=at)
        finally:
            slots.release()

    try:
        for call, at in zip(calls, times, strict=True):
            wait = at - sender.now()
            if wait > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            if sender.stopping:
                slots.release()
                break
            tasks.append(asyncio.create_task(one(call, at)))
        await asyncio.gather(*tasks)
    finally:  # cancelled (interrupt): the calls already sent are cancelled with the cell
        for task in tasks:
            task.cancel()


class OpenLoop:
    """What ``constant`` and ``poisson`` share; they differ only in ``times``."""

    name: ClassVar[str]
    # levels: each level is a --max-in-flight cap
    # ideal: a window of C whose k-th start is ≥ its arrival time
    # needs_rate: --rpm/--tpm: not needed
    # open_loop: needs --rate; one cell per rate; left out of "all"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="arrivals", open_loop=True)

    def times(self, count: int, knobs: Knobs) -> list[float]:
        raise NotImplementedError

    def share(self, index: int, parts: int, rate: float, seed: int) -> ArrivalShare:
        """Sender ``index`` of ``parts`` (each given every parts-th call): its own seeded stream at rate/parts.

        Independent Poisson streams merge into one at the sum of their rates.
        """
        if parts == 1:
            return ArrivalShare(rate=rate, seed=seed)
        return ArrivalShare(rate=rate / parts, seed=stream_seed(seed, index))

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        if not knobs.rate or knobs.rate <= 0:
            raise ValueError(f"{self.name} needs a rate (--rate) above 0")
        await send_at(self.times(len(calls), knobs), calls, sender, knobs.concurrency)
