"""A profile put into words: error bodies, retry headers and rate-limit headers as a provider writes them.

Without a profile the dialect is OpenAI's, byte for byte what the mock has always sent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bench.mock import responses as r
from bench.mock.limits import RateLimiter, TokenBucket, format_duration
from bench.mock.profile import OPENAI_DIALECT, OPENAI_FIELDS, Profile, Refusal


def error_body(shape: str, status: int, message: str, type_: str, code: str | int | None) -> bytes:
    """An error body in one of the shapes providers use (``profile.BODY_SHAPES``)."""
    if shape == "azure":
        return r.dumps({"error": {"code": str(code if code is not None else status), "message": message}})
    if shape == "google":  # Google's OpenAI-compatible endpoint answers a list of errors
        return r.dumps([{"error": {"code": status, "message": message, "status": type_}}])
    if shape == "llamacpp":
        return r.dumps({"error": {"code": status, "message": message, "type": type_}})
    if shape == "detail":  # FastAPI's HTTPException
        return r.dumps({"detail": message})
    return r.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


def rfc3339(seconds_from_now: float) -> str:
    """A moment ``seconds_from_now`` away as RFC 3339 in UTC, to the millisecond."""
    when = datetime.now(UTC) + timedelta(seconds=max(0.0, seconds_from_now))
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def set_repr(names: frozenset[str]) -> str:
    """Field names as a Python set prints them (sorted, so that messages are stable)."""
    return "{" + ", ".join(repr(n) for n in sorted(names)) + "}"


class Dialect:
    """How one server speaks: built once from a profile (or OpenAI's, without one)."""

    def __init__(self, profile: Profile | None = None) -> None:
        self.profile = profile or OPENAI_DIALECT
        self.quirks = self.profile.quirks
        self._headers = self.profile.headers
        self._known = OPENAI_FIELDS | self.quirks.extra_fields

    def refusal_body(self, refusal: Refusal, message: str, type_: str, code: str | int | None, **words: Any) -> bytes:
        """``refusal``'s body: its own wording where it has one, else the mock's (``message``, ``type_``, ``code``)."""
        text = refusal.message.format(**words) if refusal.message else message
        return error_body(
            refusal.body,
            refusal.status,
            text,
            refusal.type or type_,
            refusal.code if refusal.code is not None else code,
        )

    def error(self, status: int, message: str, type_: str, code: str | None = None) -> bytes:
        """An error the mock makes up (a bad request, a server error) in the profile's rate-limit body shape."""
        return error_body(self.profile.rate_limit.body, status, message, type_, code)

    @staticmethod
    def retry_headers(refusal: Refusal, offered: dict[str, str]) -> dict[str, str]:
        """Of the retry headers the mock computed, those this refusal sends."""
        return {name: value for name, value in offered.items() if name in refusal.retry_after}

    def limit_headers(self, limiter: RateLimiter, *, refused: bool) -> dict[str, str]:
        """The rate-limit headers for the configured buckets, when this dialect sends them on this reply."""
        on = self._headers.on
        if not limiter.enabled or on == "never" or (on == "429" and not refused):
            return {}
        out: dict[str, str] = {}
        requests = limiter.daily if limiter.daily is not None else limiter.requests
        for kind, bucket in (("requests", requests), ("tokens", limiter.tokens)):
            if bucket is not None:
                for name in self._headers.fields:
                    out[self._headers.template.format(field=name, kind=kind)] = self._value(name, bucket)
        return out

    def _value(self, name: str, bucket: TokenBucket) -> str:
        if name == "limit":
            return str(bucket.limit)
        if name == "remaining":
            return str(bucket.remaining())
        reset = bucket.reset_after()
        fmt = self._headers.reset_format
        if fmt == "rfc3339":
            return rfc3339(reset)
        return _seconds(reset) if fmt == "seconds" else format_duration(reset)

    def refused_fields(self, keys: frozenset[str]) -> tuple[int, bytes] | None:
        """The status and body refusing a request's fields, or None when the profile takes them all."""
        quirks = self.quirks
        unknown = keys - self._known if quirks.unknown_fields == "reject" else frozenset()
        if unknown:
            default = f"Unrecognized request argument supplied: {', '.join(sorted(unknown))}"
            body = self.refusal_body(quirks.unknown_refusal, default, "invalid_request_error", None, **_words(unknown))
            return quirks.unknown_refusal.status, body
        rejected = keys & quirks.rejected_fields
        if rejected:
            default = f"'{sorted(rejected)[0]}' is not supported"
            body = self.refusal_body(quirks.field_refusal, default, "invalid_request_error", None, **_words(rejected))
            return quirks.field_refusal.status, body
        return None


FIELD_WORDS: Final = {"model": "", "seconds": 0, "kind": "", "limit": 0}


def _words(fields: frozenset[str]) -> dict[str, Any]:
    return {**FIELD_WORDS, "fields": set_repr(fields)}


def wait_seconds(wait_s: float) -> int:
    """A wait in whole seconds, rounded up (as ``retry-after`` states it)."""
    return max(1, math.ceil(wait_s - 1e-9))
