"""OpenAI-style rate limits: token buckets for requests and tokens per minute, checked at arrival.

OpenAI publishes limits per minute but enforces them over shorter windows: a 60 RPM limit may
be enforced as about one request per second, so a burst of 60 requests at t=0 is mostly
rejected even though the minute's budget is not spent. We model that with a token bucket that
refills at ``limit / 60`` per second and holds ``burst_seconds`` worth of refill (at least one
unit). It starts full, so a client may burst ``burst_seconds * limit / 60`` requests at once and
is then held to the steady rate. A rejected (429) request consumes nothing. The tokens bucket may hold
more than the requests bucket (``tokens_burst_seconds``): a provider whose headers count the tokens left
out of the minute's limit (Groq's) lets a client spend what they say is left.

The tokens bucket charges a request its prompt tokens plus its ``max_tokens`` (OpenAI counts the
completion budget at admission). A request larger than the bucket is admitted once the bucket is
full and leaves it in debt, so the long-run rate still holds; only a request larger than the
whole per-minute limit is refused outright ("Request too large"), as OpenAI does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["requests", "tokens"]
_EPSILON: Final = 1e-9
_LIMITS_URL: Final = "https://platform.openai.com/account/rate-limits"


def format_duration(seconds: float) -> str:
    """A duration as OpenAI writes it in ``x-ratelimit-reset-*``: "12ms", "1.5s", "6m0s", "1h2m3s"."""
    ms = max(0, round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


class TokenBucket:
    """Drip ``per_minute / 60`` units a second into a bucket holding ``burst_seconds`` of them."""

    __slots__ = ("_clock", "_level", "_updated", "capacity", "limit", "rate")

    def __init__(
        self, *, per_minute: int, burst_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._clock = clock
        self._level = self.capacity
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._updated) * self.rate)
        self._updated = now
        return self._level

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` units would be admitted (0.0 when they would be admitted now)."""
        need = min(cost, self.capacity)
        level = self._refill()
        if level + _EPSILON >= need:
            return 0.0
        return (need - level) / self.rate

    def take(self, cost: float) -> None:
        """Consume ``cost`` units (call only after ``wait_for`` returned 0)."""
        self._level -= cost

    def used(self) -> float:
        """Units spent and not yet refilled."""
        return self.capacity - self._refill()

    def remaining(self) -> int:
        """What is left of the per-minute limit, as OpenAI reports it."""
        return max(0, math.floor(self.limit - self.used() + _EPSILON))

    def reset_after(self) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, self.used()) / self.rate

    def refill(self) -> None:
        self._level = self.capacity
        self._updated = self._clock()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused, with the wait a client should honour."""

    kind: Kind
    wait_s: float
    message: str
    limit: int = 0  # the limit refused at (per minute, or per day)

    def headers(self) -> dict[str, str]:
        # Round up (waiting less would be refused again), forgiving float noise like 600.0000000001.
        wait_ms = max(1, math.ceil(self.wait_s * 1000 - 1e-6))
        return {"retry-after-ms": str(wait_ms), "retry-after": str(max(1, math.ceil(self.wait_s - 1e-9)))}


def day_bucket(*, per_day: int, used: int = 0, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
    """A bucket holding a day's requests and refilling over a day, ``used`` of it already spent."""
    bucket = TokenBucket(per_minute=per_day, burst_seconds=60.0, clock=clock)  # holds ``per_day``…
    bucket.rate = per_day / 86_400.0  # …and refills it over a day
    bucket.take(min(used, per_day))
    return bucket


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets, checked together, charged together.

    With ``rpd`` a day's request budget is checked too, and the requests headers state it (as
    Groq's do: a limit per day, a reset hours away) while the tokens headers stay per minute.
    """

    __slots__ = ("_clock", "_rpd_used", "daily", "requests", "tokens")

    def __init__(
        self,
        *,
        rpm: int | None,
        tpm: int | None,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rpd: int | None = None,
        rpd_used: int = 0,
        tokens_burst_seconds: float | None = None,
    ) -> None:
        """``tokens_burst_seconds``: the tokens bucket's depth when it differs from ``burst_seconds``."""
        tokens_burst = burst_seconds if tokens_burst_seconds is None else tokens_burst_seconds
        self.requests = TokenBucket(per_minute=rpm, burst_seconds=burst_seconds, clock=clock) if rpm else None
        self.tokens = TokenBucket(per_minute=tpm, burst_seconds=tokens_burst, clock=clock) if tpm else None
        self.daily = day_bucket(per_day=rpd, used=rpd_used, clock=clock) if rpd else None
        self._clock, self._rpd_used = clock, rpd_used

    @property
    def enabled(self) -> bool:
        return self.requests is not None or self.tokens is not None or self.daily is not None

    def admit(self, cost_tokens: int, model: str) -> Rejection | None:
        """Charge one request of ``cost_tokens`` tokens, or say why not (charging nothing)."""
        waits: list[tuple[float, Kind, TokenBucket, float]] = []
        if self.requests is not None:
            wait = self.requests.wait_for(1)
            if wait:
                waits.append((wait, "requests", self.requests, 1))
        if self.tokens is not None:
            if cost_tokens > self.tokens.limit:
                limit = self.tokens.limit
                return Rejection("tokens", 60.0, _too_large(model, limit, cost_tokens), limit)
            wait = self.tokens.wait_for(cost_tokens)
            if wait:
                waits.append((wait, "tokens", self.tokens, cost_tokens))
        if self.daily is not None:
            wait = self.daily.wait_for(1)
            if wait:
                waits.append((wait, "requests", self.daily, 1))
        if waits:
            wait, kind, bucket, cost = max(waits, key=lambda w: w[0])
            return Rejection(kind, wait, _reached(model, kind, bucket, cost, wait), bucket.limit)
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(cost_tokens)
        if self.daily is not None:
            self.daily.take(1)
        return None

    def headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers for the buckets that are configured."""
        out: dict[str, str] = {}
        requests = self.daily if self.daily is not None else self.requests
        for kind, bucket in (("requests", requests), ("tokens", self.tokens)):
            if bucket is not None:
                out[f"x-ratelimit-limit-{kind}"] = str(bucket.limit)
                out[f"x-ratelimit-remaining-{kind}"] = str(bucket.remaining())
                out[f"x-ratelimit-reset-{kind}"] = format_duration(bucket.reset_after())
        return out

    def refill(self) -> None:
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.refill()
        if self.daily is not None:  # back to how the day started
            self.daily = day_bucket(per_day=self.daily.limit, used=self._rpd_used, clock=self._clock)


def _reached(model: str, kind: Kind, bucket: TokenBucket, cost: float, wait: float) -> str:
    unit = "RPM" if kind == "requests" else "TPM"
    return (
        f"Rate limit reached for {model} in organization org-mock on {kind} per min ({unit}): "
        f"Limit {bucket.limit}, Used {math.ceil(bucket.used() - _EPSILON)}, Requested {int(cost)}. "
        f"Please try again in {format_duration(wait)}. Visit {_LIMITS_URL} to learn more."
    )


def _too_large(model: str, limit: int, cost: int) -> str:
    return (
        f"Request too large for {model} in organization org-mock on tokens per min (TPM): "
        f"Limit {limit}, Requested {cost}. The input or output tokens must be reduced in order "
        f"to run successfully. Visit {_LIMITS_URL} to learn more."
    )
