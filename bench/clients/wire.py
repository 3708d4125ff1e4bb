"""The SDK's chat request and rules, without the SDK: what the raw drivers (bench.clients.raw) share.

They send the bytes the SDK sends (body, ``Authorization``, ``x-bench-call-id``,
``x-stainless-retry-count``), retry by the SDK's rules (408/409/429/5xx and connection errors,
``retry-after-ms``/``retry-after`` up to 120 s, else 0.5 s·2ⁿ capped at 8 s, ``insufficient_quota``
never) and name failures as the SDK does (``RateLimitError: rate_limit_exceeded``,
``APIConnectionError: <cause>``, ``APITimeoutError``), so their rows compare with the SDK's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import httpx2

from bench.clients.base import (
    CALL_ID_HEADER,
    MALFORMED_RESPONSE,
    RETRY_COUNT_HEADER,
    Endpoint,
    Outcome,
    RequestSettings,
    answer_outcome,
    evidence,
    processing_s,
    scrub,
)
from bench.clients.bounds import ResponseTooLarge, redirect_error
from bench.clients.feedback import MAX_SERVER_WAIT_S, over_cap_note, retry_after_s
from bench.clients.streaming import MalformedStream, SseReader, with_timing
from bench.clients.trace import BACKOFF, PREPARE, Tracer
from bench.core.ask import DEFAULT_ASK, Ask, loads
from bench.core.calls import Call

STATUS_ERRORS: Final = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}
# The SDK's retry schedule (openai._constants), so --max-retries means the same for every client.
INITIAL_RETRY_DELAY_S: Final = 0.5
MAX_RETRY_DELAY_S: Final = 8.0
MAX_RETRY_AFTER_S: Final = MAX_SERVER_WAIT_S


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer; ``headers`` is case-insensitive in both libraries."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    stream: SseReader | None = None  # a streamed answer: ``body`` is what its chunks add up to


def request_body(endpoint: Endpoint, settings: RequestSettings, call: Call) -> bytes:
    """The JSON the SDK posts for this call, byte for byte (httpx's compact, non-ASCII encoding)."""
    body: dict[str, Any] = {"model": endpoint.model, "messages": list(call.messages), **call.ask.body()}
    if "temperature" not in body and settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return _ENCODER.encode(body).encode()


# json.dumps with these options builds a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def session_headers(endpoint: Endpoint) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {endpoint.api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def _json(body: bytes) -> Any:
    try:
        return loads(body)
    except ValueError:
        return None


def _error_of(data: Any) -> dict[str, Any]:
    error = data.get("error", data) if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _retryable(reply: Reply) -> bool:
    """The SDK's ``_should_retry``, plus our rule that an empty quota is never retried."""
    after = retry_after_s(reply.headers)
    if after is not None and after > MAX_RETRY_AFTER_S:
        return False
    should = reply.headers.get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    if reply.status == 429:
        return "insufficient_quota" not in (_error_of(_json(reply.body)).get(k) for k in ("code", "type"))
    return reply.status in (408, 409) or reply.status >= 500


def outcome_from_reply(reply: Reply, attempts: int, http_429s: int, secret: str, ask: Ask = DEFAULT_ASK) -> Outcome:
    """Classify an HTTP answer like ``bench.clients.sdk.settle`` classifies the SDK's result."""
    server_s = processing_s(reply.headers)
    data = _json(reply.body)
    if 300 <= reply.status < 400:
        return Outcome(
            ok=False,
            http_status=reply.status,
            error=scrub(redirect_error(reply.status, reply.headers), secret),
            attempts=attempts,
            http_429s=http_429s,
            server_s=server_s,
        )
    if reply.status >= 400:
        fallback = "InternalServerError" if reply.status >= 500 else "APIStatusError"
        name = STATUS_ERRORS.get(reply.status, fallback)
        error = _error_of(data)
        detail = error.get("code") or error.get("type") or ""
        return Outcome(
            ok=False,
            http_status=reply.status,
            error=scrub(f"{name}: {detail}".strip().rstrip(":"), secret),
            attempts=attempts,
            http_429s=http_429s,
            server_s=server_s,
        )
    try:
        choices = data["choices"]
        if not isinstance(choices, list) or not choices:  # no choice is no answer: not a chat completion
            raise TypeError("no choices")
        usage = data.get("usage") or {}
        choice = choices[0]
        content = choice["message"].get("content")
        finish = choice.get("finish_reason")
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    except (TypeError, KeyError, IndexError, AttributeError):
        return Outcome(
            ok=False,
            http_status=reply.status,
            error=MALFORMED_RESPONSE,
            attempts=attempts,
            http_429s=http_429s,
            server_s=server_s,
            raw_answer=evidence(reply.body.decode("utf-8", "replace"), secret),
        )
    model = data.get("model")
    return answer_outcome(
        content if isinstance(content, str) else None,
        http_status=reply.status,
        attempts=attempts,
        http_429s=http_429s,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        server_s=server_s,
        finish_reason=finish if isinstance(finish, str) else "",
        served_model=model if isinstance(model, str) else "",
        secret=secret,
        ask=ask,
    )


def failure_name(exc: BaseException, secret: str) -> tuple[str, bool]:
    """The SDK's name for a failed attempt, and whether the SDK would retry it."""
    # TimeoutError before OSError: it is one (and aiohttp's timeouts are TimeoutErrors).
    if isinstance(exc, MalformedStream):  # an answer, if a broken one: not retried
        return MALFORMED_RESPONSE, False
    if isinstance(exc, ResponseTooLarge):  # the SDK retries it as it retries a dropped connection
        return exc.name, True
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return "APITimeoutError", True
    if isinstance(exc, httpx2.TransportError | aiohttp.ClientError | OSError):
        return f"APIConnectionError: {type(exc).__name__}", True
    return scrub(f"{type(exc).__name__}: {exc}", secret)[:200], False


class Tries:
    """One logical call's attempts: decides between waiting for another try and the final Outcome."""

    __slots__ = ("ask", "http_429s", "max_retries", "retries", "secret", "start")

    def __init__(self, settings: RequestSettings, secret: str, ask: Ask = DEFAULT_ASK) -> None:
        self.max_retries, self.secret, self.ask = settings.max_retries, secret, ask
        self.retries = self.http_429s = 0
        self.start = time.perf_counter()  # TTFT counts from the first send, as latency does

    def _again(self, backoff_from: float | None) -> float:
        self.retries += 1
        if backoff_from is not None and 0 < backoff_from <= MAX_RETRY_AFTER_S:
            return backoff_from
        backoff = min(INITIAL_RETRY_DELAY_S * 2.0 ** (self.retries - 1), MAX_RETRY_DELAY_S)
        return backoff * (1 - 0.25 * random.random())

    def judge(self, reply: Reply) -> Outcome | float:
        """The Outcome, or the seconds to wait before the next attempt."""
        self.http_429s += reply.status == 429
        if reply.status >= 400 and self.retries < self.max_retries and _retryable(reply):
            return self._again(retry_after_s(reply.headers))
        outcome = outcome_from_reply(reply, self.retries + 1, self.http_429s, self.secret, self.ask)
        if reply.status >= 400:  # (``over_cap_note`` says nothing of an answer)
            note = over_cap_note(reply.status, reply.headers)
            if note:
                outcome = dataclasses.replace(outcome, error=outcome.error + note)
        return outcome if reply.stream is None else with_timing(outcome, reply.stream, self.start)

    def judge_failure(self, exc: Exception) -> Outcome | float:
        name, retryable = failure_name(exc, self.secret)
        if retryable and self.retries < self.max_retries:
            return self._again(None)
        status = exc.status if isinstance(exc, ResponseTooLarge | MalformedStream) else None
        raw = evidence(exc.evidence, self.secret) if isinstance(exc, MalformedStream) else ""
        return Outcome(
            ok=False,
            http_status=status,
            error=name,
            attempts=self.retries + 1,
            http_429s=self.http_429s,
            raw_answer=raw,
        )


class Bodies:
    """``request_body`` for a workload's calls, the parts every call shares encoded once.

    A body is ``{"model":…,"messages":[…],<the Ask's fields>}``: only the messages differ between the calls
    of one Ask, so the text before and after them is kept for the last Ask seen (a workload has one).
    """

    __slots__ = ("_endpoint", "_last", "_settings")

    def __init__(self, endpoint: Endpoint, settings: RequestSettings) -> None:
        self._endpoint, self._settings = endpoint, settings
        # (the Ask, its parts), one value read and replaced whole: the threads strategy shares a driver
        self._last: tuple[Ask, tuple[str, str] | None] | None = None

    def _split(self, ask: Ask) -> tuple[str, str] | None:
        """The body's text before and after the messages; None when the Ask's fields name either key."""
        rest: dict[str, Any] = ask.body()
        if "model" in rest or "messages" in rest:  # they would replace the first keys in place
            return None
        if "temperature" not in rest and self._settings.temperature is not None:
            rest["temperature"] = self._settings.temperature
        if self._settings.stream:
            rest["stream"] = True
            rest["stream_options"] = {"include_usage": True}
        head = '{"model":' + _ENCODER.encode(self._endpoint.model) + ',"messages":'
        return head, ("," + _ENCODER.encode(rest)[1:]) if rest else "}"

    def __call__(self, call: Call) -> bytes:
        last = self._last
        if last is None or last[0] is not call.ask:
            last = self._last = (call.ask, self._split(call.ask))
        parts = last[1]
        if parts is None:
            return request_body(self._endpoint, self._settings, call)
        head, tail = parts
        return (head + _ENCODER.encode(call.messages) + tail).encode()


class RawRequest:
    """What every raw driver shares: the URL, per-call headers and the retry loop."""

    def __init__(self, endpoint: Endpoint, settings: RequestSettings) -> None:
        self._endpoint, self._settings = endpoint, settings
        self.url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self._body = Bodies(endpoint, settings)

    async def run(
        self, call: Call, post: Callable[[bytes, dict[str, str]], Awaitable[Reply]], trace: Tracer | None = None
    ) -> Outcome:
        body = self._body(call)
        tries = Tries(self._settings, self._endpoint.api_key, call.ask)
        while True:
            headers = {CALL_ID_HEADER: call.call_id, RETRY_COUNT_HEADER: str(tries.retries), **call.ask.headers()}
            try:
                verdict = tries.judge(await post(body, headers))
            except Exception as exc:  # one row per call, whatever went wrong
                verdict = tries.judge_failure(exc)
            if isinstance(verdict, Outcome):
                return verdict
            marks = trace.find(headers) if trace is not None else None
            if marks is not None:
                marks.mark(BACKOFF)
            await asyncio.sleep(verdict)
            if marks is not None:
                marks.mark(PREPARE)

    def run_blocking(
        self, call: Call, post: Callable[[bytes, dict[str, str]], Reply], trace: Tracer | None = None
    ) -> Outcome:
        body = self._body(call)
        tries = Tries(self._settings, self._endpoint.api_key, call.ask)
        while True:
            headers = {CALL_ID_HEADER: call.call_id, RETRY_COUNT_HEADER: str(tries.retries), **call.ask.headers()}
            try:
                verdict = tries.judge(post(body, headers))
            except Exception as exc:  # one row per call, whatever went wrong
                verdict = tries.judge_failure(exc)
            if isinstance(verdict, Outcome):
                return verdict
            marks = trace.find(headers) if trace is not None else None
            if marks is not None:
                marks.mark(BACKOFF)
            time.sleep(verdict)
            if marks is not None:
                marks.mark(PREPARE)
