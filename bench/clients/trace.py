"""Where the time of each call went, from the clients' own hooks.

httpx2's request hook and httpcore2's ``trace`` request extension (the SDK's default transport
and the raw httpx driver), aiohttp's ``TraceConfig`` (the SDK's aiohttp backend), the raw aiohttp
driver's own send and its connector (``MarkingConnector``: a ``TraceConfig`` costs ~35 µs a request),
and the SDK's sleep between retries each mark the moment a call moves from one part to
the next. A call's parts are the intervals between consecutive marks, so they add up to its
latency by construction; what the hooks decide is where each boundary falls:

``prepare`` the client building the request (the SDK's CPU; again before each retry) ·
``pool_wait`` the request handed to the transport until a connection is assigned ·
``connect`` TCP (and TLS) set-up, 0 on a reused connection · ``ttfb`` the request written until the
response headers are read (the server's time and the network) · ``body`` the body read and parsed,
until the call returns · ``backoff`` the SDK's (or the raw drivers' identical) sleeps between attempts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
import httpx2
import openai
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from bench.clients.headers import CALL_ID_HEADER
from bench.clients.reconnect import PROBE
from bench.core.frozen import quick_init

PREPARE: Final = "prepare"
POOL_WAIT: Final = "pool_wait"
CONNECT: Final = "connect"
TTFB: Final = "ttfb"
BODY: Final = "body"
BACKOFF: Final = "backoff"
PARTS: Final = (PREPARE, POOL_WAIT, CONNECT, TTFB, BODY, BACKOFF)

# httpcore2 trace events that start a part (the others happen inside one).
_HTTPCORE_PARTS: Final[Mapping[str, str]] = {
    "connection.connect_tcp.started": CONNECT,
    "connection.connect_unix_socket.started": CONNECT,
    "http11.send_request_headers.started": TTFB,
    "http2.send_request_headers.started": TTFB,
    "http11.receive_response_headers.complete": BODY,
    "http2.receive_response_headers.complete": BODY,
}


class CallTrace:
    """The marks of one logical call, every attempt: (perf_counter time, the part starting then)."""

    __slots__ = ("marks",)

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []

    def mark(self, part: str) -> None:
        self.marks.append((time.perf_counter(), part))

    def httpcore(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore2's ``trace`` extension, blocking transports."""
        part = _HTTPCORE_PARTS.get(event)
        if part is not None:
            self.marks.append((time.perf_counter(), part))

    async def ahttpcore(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore2's ``trace`` extension, async transports (it must be a coroutine function)."""
        part = _HTTPCORE_PARTS.get(event)
        if part is not None:
            self.marks.append((time.perf_counter(), part))


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """One call's latency split into consecutive parts (seconds); they sum to ``end − start``."""

    prepare_s: float
    pool_wait_s: float
    connect_s: float
    ttfb_s: float
    body_s: float
    backoff_s: float


_PART_INDEX: Final[Mapping[str, int]] = {part: index for index, part in enumerate(PARTS)}


def split(start: float, end: float, trace: CallTrace | None) -> Parts | None:
    """Each part's share of ``[start, end]``; None when no hook fired (nothing to say)."""
    totals = shares(start, end, trace)
    if totals is None:
        return None
    prepare, pool_wait, connect, ttfb, body, backoff = totals
    return Parts(
        prepare_s=prepare, pool_wait_s=pool_wait, connect_s=connect, ttfb_s=ttfb, body_s=body, backoff_s=backoff
    )


def shares(start: float, end: float, trace: CallTrace | None) -> list[float] | None:
    """``split``'s parts as a list in ``PARTS`` order, for a caller that reads them all at once (the row)."""
    if trace is None or not trace.marks:
        return None
    totals = [0.0] * len(PARTS)
    index, at = 0, start  # PREPARE until the first mark
    for when, part in trace.marks:
        # clamp: a mark cannot fall outside the call or go back
        if when < at:
            when = at
        if when > end:
            when = end
        totals[index] += when - at
        index, at = _PART_INDEX[part], when
    totals[index] += end - at
    return totals


class Tracer:
    """The calls in flight of one client, found by their ``x-bench-call-id`` from inside the hooks."""

    def __init__(self) -> None:
        self._open: dict[str, CallTrace] = {}

    def begin(self, call_id: str) -> CallTrace:
        trace = self._open[call_id] = CallTrace()
        return trace

    def end(self, call_id: str) -> CallTrace | None:
        return self._open.pop(call_id, None)

    def find(self, headers: Mapping[str, str]) -> CallTrace | None:
        return self._open.get(headers.get(CALL_ID_HEADER, ""))

    # httpx2 (the SDK's default transport, the raw httpx driver)
    def _attach(self, request: httpx2.Request, blocking: bool) -> None:
        trace = self.find(request.headers)
        if trace is not None:
            trace.mark(POOL_WAIT)
            request.extensions["trace"] = trace.httpcore if blocking else trace.ahttpcore

    async def on_request(self, request: httpx2.Request) -> None:
        self._attach(request, blocking=False)

    def on_request_blocking(self, request: httpx2.Request) -> None:
        self._attach(request, blocking=True)

    def httpx_hooks(self, blocking: bool = False) -> dict[str, list[Callable[..., Any]]]:
        """``event_hooks`` for an httpx2 client: the request hook marks the hand-over and attaches
        the ``trace`` extension."""
        return {"request": [self.on_request_blocking if blocking else self.on_request]}

    # aiohttp (the raw aiohttp driver, the SDK's aiohttp backend)
    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._aio_start)
        config.on_connection_create_start.append(_aio_mark(CONNECT))
        config.on_connection_create_end.append(_aio_mark(TTFB))
        config.on_connection_reuseconn.append(_aio_mark(TTFB))
        config.on_request_end.append(_aio_mark(BODY))
        return config

    async def _aio_start(self, session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        trace = self.find(params.headers)
        context.call = trace
        if trace is not None:
            trace.mark(POOL_WAIT)


def _aio_mark(part: str) -> Callable[[aiohttp.ClientSession, SimpleNamespace, Any], Awaitable[None]]:
    async def mark(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        trace: CallTrace | None = getattr(context, "call", None)
        if trace is not None:
            trace.mark(part)

    return mark


def _found(tracer: Tracer | None, options: Any) -> CallTrace | None:
    headers = getattr(options, "headers", None)
    return tracer.find(headers) if tracer is not None and isinstance(headers, Mapping) else None


class TracedAsyncOpenAI(openai.AsyncOpenAI):
    """``AsyncOpenAI`` whose sleeps between attempts are marked as ``backoff``."""

    tracer: Tracer | None = None

    async def _sleep_for_retry(
        self, *, retries_taken: int, max_retries: int, options: Any, response: httpx2.Response | None
    ) -> None:
        trace = _found(self.tracer, options)
        if trace is not None:
            trace.mark(BACKOFF)
        await super()._sleep_for_retry(
            retries_taken=retries_taken, max_retries=max_retries, options=options, response=response
        )
        if trace is not None:
            trace.mark(PREPARE)  # the SDK builds the next attempt's request


class TracedOpenAI(openai.OpenAI):
    """The blocking ``OpenAI`` client whose sleeps between attempts are marked as ``backoff``."""

    tracer: Tracer | None = None

    def _sleep_for_retry(
        self, *, retries_taken: int, max_retries: int, options: Any, response: httpx2.Response | None
    ) -> None:
        trace = _found(self.tracer, options)
        if trace is not None:
            trace.mark(BACKOFF)
        super()._sleep_for_retry(
            retries_taken=retries_taken, max_retries=max_retries, options=options, response=response
        )
        if trace is not None:
            trace.mark(PREPARE)


class MarkingConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that tells the sending attempt's ``Probe`` (``bench.clients.reconnect.PROBE``)
    whether its connection was reused and, when the probe carries marks, marks ``connect`` as a new
    connection starts and ``ttfb`` once one is assigned — what ``on_connection_create_start`` and
    ``on_connection_create_end``/``on_connection_reuseconn`` say, without turning on aiohttp's tracing.

    ``_create_connection`` is aiohttp's (private) hook that every new connection goes through.
    """

    async def connect(  # aiohttp's signature
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> Connection:
        probe = PROBE.get()
        if probe is None:
            return await super().connect(req, traces, timeout)
        probe.reused = True  # unless _create_connection runs
        connection = await super().connect(req, traces, timeout)
        if probe.marks is not None:
            probe.marks.mark(TTFB)
        return connection

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> ResponseHandler:
        probe = PROBE.get()
        if probe is not None:
            probe.reused = False
            if probe.marks is not None:
                probe.marks.mark(CONNECT)
        return await super()._create_connection(req, traces, timeout)


def traced_aiohttp_transport(tracer: Tracer | None, limits: httpx2.Limits) -> httpx2.AsyncBaseTransport:
    """The SDK's aiohttp transport, as ``DefaultAioHttpClient`` makes it, on a ``MarkingConnector`` (for the
    stale-connection probe) with the tracer's ``TraceConfig`` when there is one."""
    from openai._vendor.httpx_aiohttp import AiohttpTransport

    ssl_context = httpx2.create_ssl_context()
    configs = [tracer.trace_config()] if tracer is not None else []

    def session() -> aiohttp.ClientSession:  # called inside the event loop, on the first request
        connector = MarkingConnector(
            limit=limits.max_connections or 0, keepalive_timeout=limits.keepalive_expiry, ssl=ssl_context
        )
        return aiohttp.ClientSession(connector=connector, trace_configs=configs)

    return AiohttpTransport(limits=limits, client=session)
