"""Run pacing strategies in virtual time against the mock's own rate limiter, without sockets or sleeps.

Like aiolimiter's ``MockLoopTime`` tests, the event loop's clock is ours; here it also jumps to
the next timer whenever nothing is ready to run, so minutes of pacing take milliseconds and
every time is exact. The endpoint is the mock server's ``RateLimiter`` (same buckets, same
headers, same 429s) behind a fake ``Sender`` that retries 429s the way the SDK does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Literal, TypeVar

from bench.clients.base import Outcome
from bench.clients.batch import BatchAccess
from bench.clients.feedback import RateLimitFeedback
from bench.clients.pool import Lane
from bench.core.calls import Call, calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.mock.limits import RateLimiter, TokenBucket, format_duration
from bench.mock.service import INJECTED_429_HEADERS
from strategies import STRATEGIES, Knobs
from strategies.rate_limited import call_tokens

T = TypeVar("T")
MAX_TOKENS = 120
TICK_S = 1e-6
Headers = Literal["openai", "no-limit", "reset-only", "none", "no-hook", "blind"]
SDK_BACKOFF_S = 0.5  # the openai SDK's first wait when a 429 names none (it doubles after)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer when nothing is ready (no real waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _run_once(self) -> None:
        if not self._ready and self._scheduled:  # type: ignore[attr-defined]
            # Always a little forward, as a real clock would be: a limiter that recomputes a wait
            # a float-rounding above zero must not spin at one instant forever.
            when = self._scheduled[0].when()  # type: ignore[attr-defined]
            self._virtual_now = max(self._virtual_now + TICK_S, when)
        super()._run_once()  # type: ignore[misc]


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(coro)


def _shape(headers: Mapping[str, str], kind: Headers) -> dict[str, str]:
    """What a server of this kind sends: OpenAI's all, or less (``retry-after`` stays but for ``blind``,
    which sends nothing, as Google's OpenAI-compatible endpoint)."""
    drop: tuple[str, ...] = ()
    if kind == "blind":
        return {}
    if kind == "no-limit":
        drop = ("x-ratelimit-limit-",)
    elif kind == "reset-only":
        drop = ("x-ratelimit-limit-", "x-ratelimit-remaining-")
    elif kind in ("none", "no-hook"):
        drop = ("x-ratelimit-",)
    return {k: v for k, v in headers.items() if not (drop and k.startswith(drop))}


class LimitedEndpoint:
    """The mock's rpm/tpm buckets in virtual time; answers after ``latency_s``, 429s at once."""

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        burst_seconds: float = 1.0,
        tokens_burst_seconds: float | None = None,
        latency_s: float = 0.05,
        max_retries: int = 2,
        headers: Headers = "openai",
        others_rps: float = 0.0,
        noise: float = 0.0,
        used_s: float = 0.0,
        daily: tuple[int, int] | None = None,
    ) -> None:
        """``noise``: the share of attempts refused at random with only ``retry-after`` (the mock's
        injected 429s); ``used_s``: seconds of the requests bucket already spent by others at the start;
        ``daily``: (limit, remaining) of a day's request budget stated in the requests headers."""
        loop = asyncio.get_running_loop()
        self.limiter = RateLimiter(
            rpm=rpm, tpm=tpm, burst_seconds=burst_seconds, tokens_burst_seconds=tokens_burst_seconds, clock=loop.time
        )
        if used_s and self.limiter.requests is not None:
            self.limiter.requests.take(used_s * self.limiter.requests.rate)
        self.daily = None
        if daily is not None:
            self.daily = TokenBucket(per_minute=daily[0], burst_seconds=60.0, clock=loop.time)  # holds a day's
            self.daily.rate = daily[0] / 86400.0  # ... and refills over a day
            self.daily.take(daily[0] - daily[1])
        self.noise, self._random = noise, random.Random(0)
        self.feedback = RateLimitFeedback(clock=loop.time)
        self.latency_s, self.max_retries, self.headers = latency_s, max_retries, headers
        self.others_rps = others_rps
        self.admitted: list[tuple[float, int]] = []  # (when, tokens charged)
        self.refused_at: list[float] = []  # when each 429 was sent
        self.attempts = self.http_429s = self.in_flight = self.peak_in_flight = self.noise_429s = 0

    async def complete(self, cost: int) -> tuple[bool, int, int]:
        """(ok, attempts, 429s) for one call, retrying 429s after ``retry-after-ms`` like the SDK."""
        loop = asyncio.get_running_loop()
        refused = 0
        for attempt in range(self.max_retries + 1):
            self.attempts += 1
            noise = self.noise and self._random.random() < self.noise
            rejection = None if noise else self.limiter.admit(cost, "gpt-4o-mini")
            if rejection is None and not noise:
                if self.daily is not None:
                    self.daily.take(1)
                self.admitted.append((loop.time(), cost))
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                await asyncio.sleep(self.latency_s)
                self.in_flight -= 1
                self.feedback.observe(200, _shape(self._headers(), self.headers), attempt > 0)
                return True, attempt + 1, refused
            refused += 1
            self.http_429s += 1
            self.refused_at.append(loop.time())
            self.noise_429s += bool(noise)
            headers = dict(INJECTED_429_HEADERS) if rejection is None else {**rejection.headers(), **self._headers()}
            self.feedback.observe(429, _shape(headers, self.headers), attempt > 0)
            if attempt < self.max_retries:
                sent = _shape(headers, self.headers)
                wait = int(sent["retry-after-ms"]) / 1000 if "retry-after-ms" in sent else SDK_BACKOFF_S * 2**attempt
                await asyncio.sleep(wait)
        return False, self.max_retries + 1, refused

    def _headers(self) -> dict[str, str]:
        headers = self.limiter.headers()
        if self.daily is not None:  # Groq-style: the requests headers state the day's budget
            headers["x-ratelimit-limit-requests"] = str(self.daily.limit)
            headers["x-ratelimit-remaining-requests"] = str(self.daily.remaining())
            headers["x-ratelimit-reset-requests"] = format_duration(self.daily.reset_after())
        return headers

    async def other_traffic(self) -> None:
        """Someone else on the same key: ``others_rps`` requests a second, whatever the answer."""
        while True:
            self.limiter.admit(MAX_TOKENS + 100, "gpt-4o-mini")
            await asyncio.sleep(1.0 / self.others_rps)

    def admitted_between(self, start: float, end: float) -> tuple[int, int]:
        """Requests and tokens admitted in [start, end)."""
        inside = [tokens for when, tokens in self.admitted if start <= when < end]
        return len(inside), sum(inside)


class FakeSender:
    """Implements ``strategies.base.Sender`` over a ``LimitedEndpoint``; keeps each send's times."""

    def __init__(self, endpoint: LimitedEndpoint, stop_after: int | None = None, knobs: Knobs | None = None) -> None:
        self.endpoint, self.stop_after = endpoint, stop_after
        self._pace = (None, None) if knobs is None else (knobs.rpm, knobs.tpm)
        self._loop = asyncio.get_running_loop()
        self.t0 = self._loop.time()
        self.records: list[CallRecord] = []
        self.sent = 0
        self.learned_rpm: float | None = None

    @property
    def stopping(self) -> bool:
        return self.stop_after is not None and self.sent >= self.stop_after

    @property
    def rate_limits(self) -> RateLimitFeedback | None:
        return None if self.endpoint.headers == "no-hook" else self.endpoint.feedback

    @property
    def lanes(self) -> tuple[Lane, ...]:
        rpm, tpm = self._pace
        return (Lane(index=0, label="virtual", rpm=rpm, tpm=tpm, rate_limits=self.rate_limits),)

    def now(self) -> float:
        return self._loop.time() - self.t0

    async def send(self, call: Call, scheduled_s: float | None = None, *, lane: int | None = None) -> CallRecord | None:
        return await self._send_to(self.endpoint, call, scheduled_s)

    async def _send_to(self, endpoint: LimitedEndpoint, call: Call, scheduled_s: float | None) -> CallRecord | None:
        if self.stopping:
            return None
        self.sent += 1
        start = self.now()
        ok, attempts, refused = await endpoint.complete(call_tokens(call, MAX_TOKENS))
        end = self.now()
        record = CallRecord(
            run_id="virtual",
            strategy="-",
            concurrency=0,
            call_id=call.call_id,
            persona_id=call.persona_id,
            repeat=call.repeat,
            scheduled_s=start if scheduled_s is None else scheduled_s,
            start_s=start,
            end_s=end,
            latency_s=end - start,
            status="ok" if ok else "error",
            http_status=200 if ok else 429,
            error="" if ok else "RateLimitError: rate_limit_exceeded",
            attempts=attempts,
            prompt_tokens=None,
            completion_tokens=None,
            answer="",
            http_429s=refused,
        )
        self.records.append(record)
        return record

    def send_blocking(self, call: Call, scheduled_s: float | None = None) -> CallRecord | None:
        raise NotImplementedError("pacing strategies are async")

    @property
    def batches(self) -> BatchAccess | None:
        return None  # no Batch API in virtual time

    def record(
        self,
        call: Call,
        outcome: Outcome,
        *,
        scheduled_s: float,
        start_s: float,
        end_s: float,
        price_factor: float = 1.0,
    ) -> CallRecord | None:
        raise NotImplementedError("pacing strategies send, they do not record batch rows")

    def learned(self, *, rpm: float) -> None:
        self.learned_rpm = rpm


class FakePool(FakeSender):
    """Several ``LimitedEndpoint``s, one lane each at the limits it states; ``send(..., lane=i)`` goes to i."""

    def __init__(self, endpoints: Sequence[LimitedEndpoint], limits: Sequence[tuple[int | None, int | None]]) -> None:
        super().__init__(endpoints[0])
        self.endpoints, self.limits = list(endpoints), list(limits)

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return tuple(
            Lane(index=i, label=str(i), rpm=rpm, tpm=tpm, rate_limits=endpoint.feedback)
            for i, (endpoint, (rpm, tpm)) in enumerate(zip(self.endpoints, self.limits, strict=True))
        )

    async def send(self, call: Call, scheduled_s: float | None = None, *, lane: int | None = None) -> CallRecord | None:
        return await self._send_to(self.endpoints[lane or 0], call, scheduled_s)


def run_pool(name: str, workload: Sequence[Call], knobs: Knobs, rpms: Sequence[int]) -> list[LimitedEndpoint]:
    """Run strategy ``name`` in virtual time over one ``LimitedEndpoint(rpm=R)`` per R, each stating R."""

    async def main() -> list[LimitedEndpoint]:
        servers = [LimitedEndpoint(rpm=rpm) for rpm in rpms]
        await STRATEGIES[name]().run(workload, FakePool(servers, [(rpm, None) for rpm in rpms]), knobs)
        return servers

    return run_virtual(main())


def calls(n: int) -> list[Call]:
    return calls_for_count(load_personas(), n)


def run_strategy(
    name: str, workload: Sequence[Call], knobs: Knobs, stop_after: int | None = None, **endpoint: Any
) -> tuple[LimitedEndpoint, FakeSender]:
    """Run strategy ``name`` over ``workload`` in virtual time against a ``LimitedEndpoint(**endpoint)``."""

    async def main() -> tuple[LimitedEndpoint, FakeSender]:
        server = LimitedEndpoint(**endpoint)
        sender = FakeSender(server, stop_after, knobs)
        others = asyncio.create_task(server.other_traffic()) if server.others_rps else None
        await STRATEGIES[name]().run(workload, sender, knobs)
        if others is not None:
            others.cancel()
        return server, sender

    return run_virtual(main())
