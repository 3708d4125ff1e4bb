"""Learn an endpoint's rate limit from its answers and send just under it, at most C in flight.

OpenAI-style limits are token buckets: the server refills ``limit/60`` a second into a bucket
holding about a second of it, and says on every answer how long until the bucket is full
again (``x-ratelimit-reset-*``): how far the client runs ahead of the refill, its *debt*.
While the debt stays above zero no refill is wasted (100 % of the limit); while it stays below
the bucket's depth nothing is refused. So the controller (``control.Controller``) steers the
debt to a small setpoint, under the ceiling the server states (``x-ratelimit-limit-*``), and
cuts its rate and pauses for ``retry-after`` on a 429. With no headers at all it falls back to
slow start, then additive increase and multiplicative decrease on 429s. A 429 that says nothing
about the rate (capacity left, the client not ahead) only pauses it; a deep bucket's debt is held,
not drained; a long window (a day's budget) paces only once it runs low. With several endpoints
each has its own controller fed by its own answers. The limits it ends with, summed over the
endpoints, are reported as ``learned_rpm``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar, Final

from bench.clients.pool import Lane
from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits
from strategies.control import Controller
from strategies.rate_limited import BURST_S, call_tokens

POLL_S: Final = 0.05  # the longest a waiting send goes without looking at new feedback


class Adaptive:
    name: ClassVar[str] = "adaptive"
    traits: ClassVar[Traits] = Traits(levels="given", ideal="endpoint", order=7)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        """One controller per endpoint (``Sender.lanes``), each fed by that endpoint's answers, at most C
        in flight in all; each lane takes the next call when its own controller lets one go."""
        if not calls:
            return
        costs = [call_tokens(call, knobs.max_tokens) for call in calls]
        window = asyncio.Semaphore(knobs.concurrency)
        todo = iter(calls)
        in_progress: set[asyncio.Task[None]] = set()
        controls = {lane.index: Controller(tokens_per_call=sum(costs) / len(costs)) for lane in sender.lanes}

        async def send(call: Call, at: float, lane: Lane, control: Controller) -> None:
            try:
                record = await sender.send(call, scheduled_s=at, lane=lane.index)
            finally:
                window.release()
            if record is not None:
                control.observe_latency(record.latency_s)
                if lane.rate_limits is None and record.http_429s:  # a client without a header hook
                    control.on_429(sender.now(), None)

        async def pace(lane: Lane) -> None:
            control, feedback = controls[lane.index], lane.rate_limits
            last = sender.now() - 1.0 / control.rate
            while True:
                if window.locked():
                    control.window_limited = True
                await window.acquire()
                call = next(todo, None)
                if call is None:
                    window.release()
                    return
                while True:
                    now = sender.now()
                    control.update(now, feedback)
                    at = max(last + 1.0 / control.rate, control.pause_until)
                    if at <= now or sender.stopping:
                        break
                    await asyncio.sleep(min(at - now, POLL_S))
                if sender.stopping:
                    window.release()
                    return
                # Falling behind (a full window, a busy loop) is made up by at most BURST_S of sends.
                last = max(at, now - BURST_S)
                task = asyncio.create_task(send(call, at, lane, control))
                in_progress.add(task)
                task.add_done_callback(in_progress.discard)

        await asyncio.gather(*(pace(lane) for lane in sender.lanes))
        if in_progress:
            await asyncio.gather(*in_progress)
        sender.learned(rpm=60.0 * sum(control.learned_rps for control in controls.values()))
