"""What responses say about the endpoint's rate limits (``x-ratelimit-*``, ``retry-after``), for strategies.

The client's response hook feeds every HTTP answer, SDK retries included, to a
``RateLimitFeedback``; the runner hands it to strategies read-only (``Sender.rate_limits``).
"""

from __future__ import annotations

import email.utils
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?)(ms|h|m|s)")
_UNIT_S: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_SERVER_WAIT_S: Final = 120.0  # the longest wait taken on a server's word (retry-after)
MAX_RESET_S: Final = 86400.0  # the longest x-ratelimit-reset-* believed (a day's budget)


def parse_duration(text: str | None) -> float | None:
    """OpenAI's ``x-ratelimit-reset-*`` durations ("20ms", "1.5s", "6m0s", "1h2m3s", or bare seconds)."""
    if text is None:
        return None
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            return None
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_reset(text: str | None, now: float | None = None) -> float | None:
    """A reset header as seconds from now: a duration (OpenAI, Groq) or an RFC 3339 time (Anthropic)."""
    seconds = parse_duration(text)
    if seconds is not None or text is None or "T" not in text:
        return seconds
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# The rate-limit header families: OpenAI's (Groq's, Azure's) and Anthropic's.
_FAMILIES: Final = ("x-ratelimit-{field}-{kind}", "anthropic-ratelimit-{kind}-{field}")
_NAMES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    (field, kind): tuple(template.format(field=field, kind=kind) for template in _FAMILIES)
    for field in ("limit", "remaining", "reset")
    for kind in ("requests", "tokens")
}
# Every header ``RateLimitInfo.from_headers`` reads: most answers carry none of them.
RATE_LIMIT_HEADERS: Final = (*(name for names in _NAMES.values() for name in names), "retry-after-ms", "retry-after")


def _header(headers: Mapping[str, str], field: str, kind: str) -> str | None:
    for name in _NAMES[field, kind]:
        value = headers.get(name)
        if value is not None:
            return value
    return None


_RATE_LIMIT_NAMES: Final = frozenset(RATE_LIMIT_HEADERS)
_FIRST_LETTERS: Final = frozenset(name[0] for name in RATE_LIMIT_HEADERS) | frozenset(
    name[0].upper() for name in RATE_LIMIT_HEADERS
)


def any_rate_limit_header(headers: Mapping[str, str]) -> bool:
    """Whether ``headers`` carries any header ``RateLimitInfo.from_headers`` reads.

    One pass over the names ``headers`` holds, each looked at only when its first letter could start one
    (``x``, ``a``, ``r``), where a ``get`` each would cost httpx2 a scan of every header (~3 µs a name,
    14 names). Names compare in lower case (aiohttp keeps the server's case; httpx2's are lower already).
    """
    for name in headers.keys():
        if name[:1] in _FIRST_LETTERS and name.lower() in _RATE_LIMIT_NAMES:
            return True
    return False


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _consistent(limit: int | None, remaining: int | None) -> tuple[int | None, int | None]:
    """A limit and what remains of it, unless they contradict themselves (a limit of 0 or less, more
    remaining than the limit): such headers say nothing about the rate and are ignored."""
    if limit is not None and limit <= 0:
        return None, None
    if remaining is not None and (remaining < 0 or (limit is not None and remaining > limit)):
        return None, None
    return limit, remaining


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date).

    The project's one parser (the raw drivers' retries and ``adaptive``'s pause both use it). Valid
    values are finite and non-negative; anything else is ignored, as the SDK ignores it. The value
    is the server's word, uncapped: callers bound it with ``server_wait``.
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        text = headers.get(name)
        if text is None:
            continue
        value: float | None
        try:
            value = float(text) * scale
        except ValueError:
            value = _http_date_s(text) if name == "retry-after" else None
        if value is not None and math.isfinite(value) and value >= 0:
            return value
    return None


def _http_date_s(text: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def server_wait(seconds: float) -> float:
    """A wait the server asked for, capped: no server's word stalls a run past ``MAX_SERVER_WAIT_S``."""
    return min(seconds, MAX_SERVER_WAIT_S)


def over_cap_note(status: int, headers: Mapping[str, str]) -> str:
    """What a failed call's row adds when the server asked for a wait longer than the cap."""
    if status < 400:
        return ""
    after = retry_after_s(headers)
    if after is None or after <= MAX_SERVER_WAIT_S:
        return ""
    return f" (retry-after {after:.0f} s is over the {MAX_SERVER_WAIT_S:.0f} s cap: not waited)"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitInfo:
    """The rate-limit headers of one response (None where absent); ``at`` is when it arrived."""

    at: float
    status: int
    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None
    capped: bool = False  # a wait or reset was over its cap (MAX_SERVER_WAIT_S, MAX_RESET_S) and was dropped

    @classmethod
    def from_headers(cls, at: float, status: int, headers: Mapping[str, str]) -> RateLimitInfo:
        if not any_rate_limit_header(headers):
            return cls(at=at, status=status)  # what the lookups below would find: nothing

        def get(field: str, kind: str) -> str | None:
            return _header(headers, field, kind)

        waits = (
            parse_reset(get("reset", "requests")),
            parse_reset(get("reset", "tokens")),
            retry_after_s(headers),
        )
        # A reset hours away is a day's budget (adaptive paces to it), not a wait: past a day it is nonsense
        # ("99999999h"). retry-after is a wait, refused past MAX_SERVER_WAIT_S: the call ends at once with
        # that reason (``over_cap_note``), so nothing may pause for it either. Refused values are dropped.
        caps = (MAX_RESET_S, MAX_RESET_S, MAX_SERVER_WAIT_S)
        reset_requests, reset_tokens, after = (
            None if w is None or w > cap else w for w, cap in zip(waits, caps, strict=True)
        )
        limit_requests, remaining_requests = _consistent(
            _int(get("limit", "requests")), _int(get("remaining", "requests"))
        )
        limit_tokens, remaining_tokens = _consistent(_int(get("limit", "tokens")), _int(get("remaining", "tokens")))
        return cls(
            at=at,
            status=status,
            limit_requests=limit_requests,
            remaining_requests=remaining_requests,
            reset_requests_s=reset_requests,
            limit_tokens=limit_tokens,
            remaining_tokens=remaining_tokens,
            reset_tokens_s=reset_tokens,
            retry_after_s=after,
            capped=any(w is not None and w > cap for w, cap in zip(waits, caps, strict=True)),
        )

    @property
    def debt_s(self) -> float | None:
        """How far the client runs ahead of the server's refill: the longer ``reset-*`` wait."""
        resets = [r for r in (self.reset_requests_s, self.reset_tokens_s) if r is not None]
        return max(resets) if resets else None

    @property
    def informative(self) -> bool:
        stated = (self.limit_requests, self.limit_tokens, self.remaining_requests, self.remaining_tokens)
        return self.debt_s is not None or any(v is not None for v in stated)


class RateLimitFeedback:
    """Running counts and the latest rate-limit headers, updated from any thread."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.responses = 0
        self.http_429s = 0
        self.fresh_429s = 0  # 429s to first attempts: a retry's 429 mostly echoes an earlier one
        self.latest: RateLimitInfo | None = None  # the last answer carrying x-ratelimit-* headers
        self.last_429: RateLimitInfo | None = None

    def observe(self, status: int, headers: Mapping[str, str], retry: bool | Callable[[], bool] = False) -> None:
        """Count one answer; ``retry`` (whether it answered a retry) may be a function, asked only of a 429."""
        if status != 429 and not any_rate_limit_header(headers):  # most answers: nothing to keep but the count
            with self._lock:
                self.responses += 1
            return
        info = RateLimitInfo.from_headers(self._clock(), status, headers)
        with self._lock:
            self.responses += 1
            if status == 429:
                self.http_429s += 1
                self.fresh_429s += not (retry() if callable(retry) else retry)
                self.last_429 = info
            if info.informative:
                self.latest = info


@runtime_checkable
class ReportsRateLimits(Protocol):
    """A chat client whose response hook keeps a ``RateLimitFeedback``."""

    rate_limits: RateLimitFeedback
