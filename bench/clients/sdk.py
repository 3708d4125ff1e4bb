"""Chat clients built on the openai SDK: pool sized to the concurrency, attempts and 429s counted."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable
from typing import Any, Final

import httpx2
import openai

from bench.clients.base import (
    CALL_ID_HEADER,
    MALFORMED_RESPONSE,
    RETRY_COUNT_HEADER,
    Endpoint,
    Outcome,
    RequestSettings,
    completed,
    evidence,
    processing_s,
    scrub,
)
from bench.clients.bounds import ResponseTooLarge, bound_async, bound_sync, redirect_error
from bench.clients.feedback import RateLimitFeedback, over_cap_note
from bench.clients.reconnect import Reconnects
from bench.clients.streaming import MalformedStream, SseReader, is_one_body, with_timing
from bench.clients.trace import TracedAsyncOpenAI, TracedOpenAI, Tracer, traced_aiohttp_transport
from bench.clients.warm import models_url, warm_async, warm_blocking
from bench.clients.wire import Reply, outcome_from_reply
from bench.core.ask import DEFAULT_ASK, Ask
from bench.core.calls import Call


def _attempts_from_request(request: httpx2.Request | None) -> int:
    if request is None:
        return 1
    try:
        return int(request.headers.get(RETRY_COUNT_HEADER, "0")) + 1
    except ValueError:
        return 1


def _is_quota_error(response: httpx2.Response) -> bool:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and "insufficient_quota" in (error.get("code"), error.get("type"))


class _Counting:
    """Counts 429 answers per call id across the SDK's hidden retries (an httpx2 response hook).

    It also marks ``insufficient_quota`` 429s with ``x-should-retry: false``, which the SDK
    obeys: an empty quota does not refill in seconds, so retrying only multiplies the errors.
    """

    def __init__(self) -> None:
        self._429s: dict[str, int] = {}
        self.feedback = RateLimitFeedback()  # rate-limit headers, for strategies that adapt

    def _count(self, response: httpx2.Response) -> None:
        call_id = response.request.headers.get(CALL_ID_HEADER, "")
        self._429s[call_id] = self._429s.get(call_id, 0) + 1
        if _is_quota_error(response):
            response.headers["x-should-retry"] = "false"

    def _observe(self, response: httpx2.Response) -> None:
        def retry() -> bool:  # read only for a 429 (an httpx2 header lookup scans every header)
            return _attempts_from_request(response.request) > 1

        self.feedback.observe(response.status_code, response.headers, retry)

    def note(self, response: httpx2.Response) -> None:
        self._observe(response)
        if response.status_code == 429:
            response.read()
            self._count(response)

    async def anote(self, response: httpx2.Response) -> None:
        self._observe(response)
        if response.status_code == 429:
            await response.aread()
            self._count(response)

    def take(self, call_id: str) -> int:
        return self._429s.pop(call_id, 0)


def outcome_from_raw(raw: Any, http_429s: int, ask: Ask = DEFAULT_ASK, secret: str = "") -> Outcome:
    """A ``with_raw_response`` result as an Outcome (the answer checked against ``ask``), read from its body
    as the raw drivers read theirs (``outcome_from_reply``): the same reply gets the same row on every client.

    The SDK's own parse (``raw.parse()``) is not asked for: it builds a ``ChatCompletion`` of pydantic models
    (~8 % of the SDK path's CPU a call) of which a row keeps five fields.
    """
    try:
        body: bytes = raw.http_response.content
    except Exception:  # the body could not be read (the SDK read it already: not expected)
        body = b""
    return outcome_from_reply(Reply(raw.status_code, raw.headers, body), raw.retries_taken + 1, http_429s, secret, ask)


def outcome_from_error(exc: Exception, http_429s: int, secret: str) -> Outcome:
    """Classify an exception from the SDK (or anything else) without letting it escape."""
    if isinstance(exc, openai.APIStatusError) and 300 <= exc.status_code < 400:
        return Outcome(
            ok=False,
            http_status=exc.status_code,
            error=scrub(redirect_error(exc.status_code, exc.response.headers), secret),
            attempts=_attempts_from_request(exc.response.request),
            http_429s=http_429s,
            server_s=processing_s(exc.response.headers),
        )
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = exc.code or body.get("type") or exc.type or ""
        return Outcome(
            ok=False,
            http_status=exc.status_code,
            error=scrub(f"{type(exc).__name__}: {detail}".strip().rstrip(":"), secret)
            + over_cap_note(exc.status_code, exc.response.headers),
            attempts=_attempts_from_request(exc.response.request),
            http_429s=http_429s,
            server_s=processing_s(exc.response.headers),
        )
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        cause = exc.__cause__
        if isinstance(cause, ResponseTooLarge):
            return Outcome(
                ok=False,
                http_status=cause.status,
                error=cause.name,
                attempts=_attempts_from_request(exc.request),
                http_429s=http_429s,
            )
        name = type(exc).__name__
        if cause is not None and not isinstance(exc, openai.APITimeoutError):
            name = f"{name}: {type(cause).__name__}"
        return Outcome(
            ok=False,
            http_status=None,
            error=name,
            attempts=_attempts_from_request(exc.request),
            http_429s=http_429s,
        )
    return Outcome(
        ok=False,
        http_status=None,
        error=scrub(f"{type(exc).__name__}: {exc}", secret)[:200],
        attempts=1,
        http_429s=http_429s,
    )


def settle(result: Any, http_429s: int, secret: str, ask: Ask = DEFAULT_ASK) -> Outcome:
    """The Outcome of a finished SDK call: a raw response, or the exception it raised."""
    if isinstance(result, Exception):
        return outcome_from_error(result, http_429s, secret)
    return outcome_from_raw(result, http_429s, ask, secret)


def _settle_traced(result: Any, http_429s: int, secret: str, tracer: Tracer | None, call: Call) -> Outcome:
    outcome = settle(result, http_429s, secret, call.ask)
    if tracer is None:
        return outcome
    return completed(outcome, trace=tracer.end(call.call_id), reconnects=outcome.reconnects)  # built just now


def _hooks(counting: Any, tracer: Tracer | None, blocking: bool = False) -> dict[str, list[Any]]:
    hooks: dict[str, list[Any]] = {"response": [counting.note if blocking else counting.anote]}
    if tracer is not None:
        hooks.update(tracer.httpx_hooks(blocking))
    return hooks


def pool_limits(pool_size: int) -> httpx2.Limits:
    # The SDK's default pool (1000 connections, 100 kept alive) would quietly cap or churn
    # connections at other concurrency levels; size it to what is being measured.
    size = max(1, pool_size)
    return httpx2.Limits(max_connections=size, max_keepalive_connections=size)


def _request_kwargs(endpoint: Endpoint, settings: RequestSettings, call: Call) -> dict[str, Any]:
    ask = call.ask
    kwargs: dict[str, Any] = {
        "model": endpoint.model,
        "messages": list(call.messages),
        "max_tokens": ask.max_tokens,
        "extra_headers": {CALL_ID_HEADER: call.call_id, **ask.headers()},
    }
    if ask.response_format is not None:
        kwargs["response_format"] = dict(ask.response_format)
    temperature = ask.temperature if ask.temperature is not None else settings.temperature
    if temperature is not None:
        kwargs["temperature"] = temperature
    if ask.seed is not None:
        kwargs["seed"] = ask.seed
    if ask.extra_body:
        kwargs["extra_body"] = dict(ask.extra_body)
    if settings.stream:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    return kwargs


def _streamed_reply(raw: Any, reader: SseReader) -> Reply:
    return Reply(raw.status_code, raw.headers, reader.body(), reader)


def settle_stream(raw: Any, reader: SseReader, http_429s: int, secret: str, start: float, ask: Ask) -> Outcome:
    """The Outcome of a stream the SDK handed back and we read to its end."""
    outcome = outcome_from_reply(_streamed_reply(raw, reader), raw.retries_taken + 1, http_429s, secret, ask)
    return with_timing(outcome, reader, start)


# What iterating the SDK's stream raises when the stream is malformed, not when the network fails (the SDK
# wraps those in APIConnectionError): undecodable bytes, JSON that is not JSON, events of the wrong shape.
MALFORMED_STREAM: Final = (ValueError, TypeError, AttributeError, KeyError, IndexError)


def _connection_error(exc: httpx2.HTTPError, raw: Any) -> openai.APIConnectionError:
    """What the SDK raises for a transport error, for a body we read ourselves."""
    request = raw.http_response.request
    if isinstance(exc, httpx2.TimeoutException):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)


async def _one_body(read: Awaitable[bytes], raw: Any) -> bytes:
    try:
        return await read
    except httpx2.HTTPError as exc:
        raise _connection_error(exc, raw) from exc


def _one_body_sync(raw: Any) -> bytes:
    try:
        body: bytes = raw.http_response.read()
    except httpx2.HTTPError as exc:
        raise _connection_error(exc, raw) from exc
    return body


class _Settling:
    """The endings shared by both SDK clients for streamed calls that did not stream."""

    _counting: _Counting
    _endpoint: Endpoint
    _tracer: Tracer | None

    def _traced(self, outcome: Outcome, call: Call) -> Outcome:
        """``outcome`` (built just now) with the call's marks."""
        if self._tracer is None:
            return outcome
        return completed(outcome, trace=self._tracer.end(call.call_id), reconnects=outcome.reconnects)

    def _settled_body(self, raw: Any, body: bytes, call: Call) -> Outcome:
        """A reply to ``stream: true`` that came as one JSON body: read as the reply it is."""
        reply = Reply(raw.status_code, raw.headers, body)
        taken = self._counting.take(call.call_id)
        outcome = outcome_from_reply(reply, raw.retries_taken + 1, taken, self._endpoint.api_key, call.ask)
        return self._traced(outcome, call)

    def _settled_malformed(self, raw: Any, exc: Exception, call: Call) -> Outcome:
        secret = self._endpoint.api_key
        outcome = Outcome(
            ok=False,
            http_status=exc.status if isinstance(exc, MalformedStream) else raw.status_code,
            error=MALFORMED_RESPONSE,
            attempts=raw.retries_taken + 1,
            http_429s=self._counting.take(call.call_id),
            server_s=processing_s(raw.headers),
            raw_answer=evidence(exc.evidence if isinstance(exc, MalformedStream) else str(exc), secret),
        )
        return self._traced(outcome, call)


class OpenAIAsyncClient(_Settling):
    """``AsyncOpenAI`` with a pool of ``pool_size`` connections (``transport`` is for tests).

    ``aiohttp=True`` sends through the SDK's official aiohttp backend (``DefaultAioHttpClient``)
    instead of its default httpx2 transport.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        settings: RequestSettings,
        pool_size: int,
        transport: httpx2.AsyncBaseTransport | None = None,
        *,
        aiohttp: bool = False,
    ) -> None:
        self._endpoint, self._settings = endpoint, settings
        self._counting = _Counting()
        self.rate_limits = self._counting.feedback
        self._tracer = Tracer() if settings.trace else None
        limits = pool_limits(pool_size)
        make_http = openai.DefaultAioHttpClient if aiohttp else openai.DefaultAsyncHttpx2Client
        hooks = _hooks(self._counting, self._tracer)
        if aiohttp:
            hooks.pop("request", None)  # aiohttp's own TraceConfig marks the hand-over
            transport = transport or traced_aiohttp_transport(self._tracer, limits)
        self._http = make_http(
            limits=limits,
            event_hooks=hooks,
            transport=transport,
            follow_redirects=False,  # a redirected POST becomes a GET without its body
        )
        self._reconnects = Reconnects()
        bound_async(self._http, settings.timeout_s, settings.max_response_bytes, self._reconnects)
        self._sdk = TracedAsyncOpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=settings.max_retries,
            timeout=settings.timeout_s,
            http_client=self._http,
        )
        self._sdk.tracer = self._tracer

    async def complete(self, call: Call) -> Outcome:
        outcome = await self._complete(call)
        reconnects = self._reconnects.take(call.call_id)
        return outcome if reconnects == outcome.reconnects else dataclasses.replace(outcome, reconnects=reconnects)

    async def _complete(self, call: Call) -> Outcome:
        result: Any
        if self._tracer is not None:
            self._tracer.begin(call.call_id)
        start = time.perf_counter()
        try:
            result = await self._sdk.chat.completions.with_raw_response.create(
                **_request_kwargs(self._endpoint, self._settings, call)
            )
            if self._settings.stream:
                if is_one_body(result.headers):  # the server ignored stream: true
                    body = await _one_body(result.http_response.aread(), result)
                    return self._settled_body(result, body, call)
                reader = SseReader()
                try:
                    async for chunk in result.parse():
                        reader.take_chunk(chunk, time.perf_counter())
                except MALFORMED_STREAM as exc:
                    await result.http_response.aclose()
                    return self._settled_malformed(result, exc, call)
                taken = self._counting.take(call.call_id)
                return self._traced(settle_stream(result, reader, taken, self._endpoint.api_key, start, call.ask), call)
        except Exception as exc:  # one row per call, whatever went wrong
            result = exc
        except BaseException:  # cancelled: forget the call's marks
            if self._tracer is not None:
                self._tracer.end(call.call_id)
            raise
        return _settle_traced(result, self._counting.take(call.call_id), self._endpoint.api_key, self._tracer, call)

    async def warm(self, connections: int) -> None:
        """Open ``connections`` connections at once, a ``GET /models`` each."""
        auth = {"Authorization": f"Bearer {self._endpoint.api_key}"}
        await warm_async(self._http, models_url(self._endpoint.base_url), auth, connections)

    async def aclose(self) -> None:
        await self._sdk.close()


class OpenAISyncClient(_Settling):
    """The blocking ``OpenAI`` client, shared by a thread pool of ``pool_size`` workers."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: RequestSettings,
        pool_size: int,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self._endpoint, self._settings = endpoint, settings
        self._counting = _Counting()
        self.rate_limits = self._counting.feedback
        self._tracer = Tracer() if settings.trace else None
        self._http = openai.DefaultHttpx2Client(
            limits=pool_limits(pool_size),
            event_hooks=_hooks(self._counting, self._tracer, True),
            transport=transport,
            follow_redirects=False,  # a redirected POST becomes a GET without its body
        )
        self._reconnects = Reconnects()
        bound_sync(self._http, settings.timeout_s, settings.max_response_bytes, self._reconnects)
        self._sdk = TracedOpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=settings.max_retries,
            timeout=settings.timeout_s,
            http_client=self._http,
        )
        self._sdk.tracer = self._tracer

    def complete(self, call: Call) -> Outcome:
        outcome = self._complete(call)
        reconnects = self._reconnects.take(call.call_id)
        return outcome if reconnects == outcome.reconnects else dataclasses.replace(outcome, reconnects=reconnects)

    def _complete(self, call: Call) -> Outcome:
        result: Any
        if self._tracer is not None:
            self._tracer.begin(call.call_id)
        start = time.perf_counter()
        try:
            result = self._sdk.chat.completions.with_raw_response.create(
                **_request_kwargs(self._endpoint, self._settings, call)
            )
            if self._settings.stream:
                if is_one_body(result.headers):  # the server ignored stream: true
                    body = _one_body_sync(result)
                    return self._settled_body(result, body, call)
                reader = SseReader()
                try:
                    for chunk in result.parse():
                        reader.take_chunk(chunk, time.perf_counter())
                except MALFORMED_STREAM as exc:
                    result.http_response.close()
                    return self._settled_malformed(result, exc, call)
                taken = self._counting.take(call.call_id)
                return self._traced(settle_stream(result, reader, taken, self._endpoint.api_key, start, call.ask), call)
        except Exception as exc:  # one row per call, whatever went wrong
            result = exc
        return _settle_traced(result, self._counting.take(call.call_id), self._endpoint.api_key, self._tracer, call)

    def warm_blocking(self, connections: int) -> None:
        """Open ``connections`` connections at once, from as many threads."""
        auth = {"Authorization": f"Bearer {self._endpoint.api_key}"}
        warm_blocking(self._http, models_url(self._endpoint.base_url), auth, connections)

    def close(self) -> None:
        self._sdk.close()
