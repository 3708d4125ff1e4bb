"""Limits every attempt obeys whatever the server does: a total deadline, a body-size cap, no redirects.

httpx2's ``timeout`` bounds each read, not the attempt, so a server that drips one byte a second
keeps a call alive forever; and nothing bounds a body's size. ``bound_async``/``bound_sync`` wrap an
httpx2 client's transport (the SDK's and the raw driver's) so that each attempt ends by its deadline
(``APITimeoutError``) and stops reading past ``max_bytes`` (``response_too_large``). They also re-send
at once a request that found its kept-alive connection closed (``bench.clients.reconnect``).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit

import httpcore2
import httpx2

from bench.clients.base import DEFAULT_MAX_RESPONSE_BYTES as DEFAULT_MAX_RESPONSE_BYTES
from bench.clients.reconnect import MAX_RECONNECTS, PROBE, Probe, Reconnects
from bench.clients.sockets import cache_sockets
from bench.clients.trace import CallTrace

TOO_LARGE: Final = "response_too_large"


class ResponseTooLarge(httpx2.RequestError):
    """A response body longer than the cap (a ``RequestError``, so the SDK treats it like a dropped connection)."""

    def __init__(self, status: int, max_bytes: int, request: httpx2.Request | None = None) -> None:
        super().__init__(f"{TOO_LARGE}: body over {max_bytes} bytes", request=request)
        self.status, self.max_bytes = status, max_bytes

    @property
    def name(self) -> str:
        return f"{TOO_LARGE}: body over {self.max_bytes} bytes"


def declared_length(headers: Mapping[str, str]) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


def check_declared(status: int, headers: Mapping[str, str], max_bytes: int, request: httpx2.Request | None) -> None:
    """Refuse a body before reading it when its ``Content-Length`` is already over the cap."""
    length = declared_length(headers)
    if length is not None and length > max_bytes:
        raise ResponseTooLarge(status, max_bytes, request)


class ByteMeter:
    """Counts a body's bytes."""

    __slots__ = ("max_bytes", "seen")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.seen = max_bytes, 0

    def over(self, chunk: bytes) -> bool:
        self.seen += len(chunk)
        return self.seen > self.max_bytes


class PayloadMeter(ByteMeter):
    """Counts an event stream's payload: the values of its ``data:`` lines, and the line not yet ended
    (a client holds it whole). The framing (``data:``, blank lines, comments, keep-alives) is not counted."""

    __slots__ = ("head", "line")

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.line, self.head = 0, b""  # the current line's length and first bytes

    def over(self, chunk: bytes) -> bool:
        *ended, rest = chunk.split(b"\n")
        for part in ended:
            self.head += part[: 5 - len(self.head)]
            if self.head.startswith(b"data:"):
                self.seen += self.line + len(part) - 5
            self.line, self.head = 0, b""
        self.head += rest[: 5 - len(self.head)]
        self.line += len(rest)
        return self.seen + self.line > self.max_bytes


def is_event_stream(headers: Mapping[str, str]) -> bool:
    return "text/event-stream" in headers.get("content-type", "")


def meter(headers: Mapping[str, str], max_bytes: int) -> ByteMeter:
    """What ``--max-response-bytes`` counts in this body: an event stream's payload, else every byte."""
    return PayloadMeter(max_bytes) if is_event_stream(headers) else ByteMeter(max_bytes)


def check_body(status: int, headers: Mapping[str, str], max_bytes: int, request: httpx2.Request | None) -> None:
    """``check_declared`` for a body counted by bytes (an event stream's length includes its framing)."""
    if not is_event_stream(headers):
        check_declared(status, headers, max_bytes, request)


def redirect_error(status: int, headers: Mapping[str, str]) -> str:
    """The error of a 3xx answer: redirects are not followed (a POST would lose its body)."""
    target = urlsplit(headers.get("location", "")).hostname or "(same host)"
    return f"redirect_not_followed: HTTP {status} to {target}"


class _AsyncBounded(httpx2.AsyncByteStream):
    def __init__(
        self, inner: httpx2.AsyncByteStream, deadline: float, max_bytes: int, response: httpx2.Response
    ) -> None:
        self._inner, self._deadline, self._max_bytes, self._response = inner, deadline, max_bytes, response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        request, counted = self._response.request, meter(self._response.headers, self._max_bytes)
        chunks = self._inner.__aiter__()
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise httpx2.ReadTimeout("attempt deadline passed", request=request) from None
            if counted.over(chunk):
                raise ResponseTooLarge(self._response.status_code, self._max_bytes, request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class AsyncBoundedTransport(httpx2.AsyncBaseTransport):
    """Each request, headers and body, ends by ``timeout_s`` and reads at most ``max_bytes``."""

    def __init__(
        self, inner: httpx2.AsyncBaseTransport, timeout_s: float, max_bytes: int, reconnects: Reconnects | None = None
    ) -> None:
        self._inner, self._timeout_s, self._max_bytes = inner, timeout_s, max_bytes
        self._reconnects = reconnects or Reconnects()
        self._httpcore = isinstance(inner, httpx2.AsyncHTTPTransport)  # else aiohttp marks PROBE, or nobody

    async def _send(self, request: httpx2.Request) -> httpx2.Response:
        """Send; re-send at once when the connection was a stale kept-alive one."""
        outer = request.extensions.get("trace")
        marks = getattr(outer, "__self__", None)  # the tracer's ``CallTrace.ahttpcore``: called directly
        blocking = marks.httpcore if isinstance(marks, CallTrace) else None
        for resend in range(MAX_RECONNECTS + 1):
            probe = Probe(reused=self._httpcore)
            if self._httpcore:
                request.extensions["trace"] = probe.ahttpcore(outer, blocking)
            token = PROBE.set(probe)
            try:
                return await self._inner.handle_async_request(request)
            except Exception as exc:
                if resend == MAX_RECONNECTS or not probe.stale(exc):
                    raise
                self._reconnects.add(request.headers)
            finally:
                PROBE.reset(token)
        raise AssertionError("unreachable")

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._send(request)
        except TimeoutError:
            raise httpx2.ReadTimeout("attempt deadline passed", request=request) from None
        try:
            check_body(response.status_code, response.headers, self._max_bytes, request)
        except ResponseTooLarge:
            await response.aclose()
            raise
        inner = response.stream
        assert isinstance(inner, httpx2.AsyncByteStream)
        response.stream = _AsyncBounded(inner, deadline, self._max_bytes, response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# The deadline of the attempt this thread is sending (a blocking request runs in one thread).
_THREAD = threading.local()


class _DeadlineStream(httpcore2.NetworkStream):
    """A socket whose every connect, read and write waits at most until the thread's attempt deadline."""

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        stream = self._inner.connect_tcp(host, port, _left(timeout), local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _left(timeout: float | None, late: type[Exception] = httpcore2.ConnectTimeout) -> float | None:
    """``timeout`` cut to what is left of this thread's attempt; ``late`` once nothing is left."""
    deadline: float | None = getattr(_THREAD, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("attempt deadline passed")
    return left if timeout is None else min(timeout, left)


@contextmanager
def _until(deadline: float) -> Iterator[None]:
    """Every blocking socket call in this thread ends by ``deadline`` (``time.monotonic``)."""
    before = getattr(_THREAD, "deadline", None)
    _THREAD.deadline = deadline
    try:
        yield
    finally:
        _THREAD.deadline = before


class _SyncBounded(httpx2.SyncByteStream):
    # A blocking read cannot be interrupted, so each socket call is given only what is left of the
    # attempt (``_DeadlineBackend``); the deadline is also checked between reads.
    def __init__(
        self, inner: httpx2.SyncByteStream, deadline: float, max_bytes: int, response: httpx2.Response
    ) -> None:
        self._inner, self._deadline, self._max_bytes, self._response = inner, deadline, max_bytes, response

    def __iter__(self) -> Iterator[bytes]:
        request, counted = self._response.request, meter(self._response.headers, self._max_bytes)
        with _until(self._deadline):
            chunks = iter(self._inner)
        while True:
            with _until(self._deadline):
                chunk = next(chunks, None)
            if chunk is None:
                return
            if counted.over(chunk):
                raise ResponseTooLarge(self._response.status_code, self._max_bytes, request)
            if time.monotonic() > self._deadline:
                raise httpx2.ReadTimeout("attempt deadline passed", request=request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class SyncBoundedTransport(httpx2.BaseTransport):
    """The blocking form of ``AsyncBoundedTransport``."""

    def __init__(
        self, inner: httpx2.BaseTransport, timeout_s: float, max_bytes: int, reconnects: Reconnects | None = None
    ) -> None:
        self._inner, self._timeout_s, self._max_bytes = inner, timeout_s, max_bytes
        self._reconnects = reconnects or Reconnects()
        self._httpcore = isinstance(inner, httpx2.HTTPTransport)

    def _send(self, request: httpx2.Request) -> httpx2.Response:
        outer = request.extensions.get("trace")
        for resend in range(MAX_RECONNECTS + 1):
            probe = Probe(reused=self._httpcore)
            if self._httpcore:
                request.extensions["trace"] = probe.httpcore(outer)
            try:
                return self._inner.handle_request(request)
            except Exception as exc:
                if resend == MAX_RECONNECTS or not probe.stale(exc):
                    raise
                self._reconnects.add(request.headers)
        raise AssertionError("unreachable")

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self._timeout_s
        with _until(deadline):
            response = self._send(request)
        try:
            check_body(response.status_code, response.headers, self._max_bytes, request)
        except ResponseTooLarge:
            response.close()
            raise
        inner = response.stream
        assert isinstance(inner, httpx2.SyncByteStream)
        response.stream = _SyncBounded(inner, deadline, self._max_bytes, response)
        return response

    def close(self) -> None:
        self._inner.close()


def bound_async(
    client: httpx2.AsyncClient, timeout_s: float, max_bytes: int, reconnects: Reconnects | None = None
) -> httpx2.AsyncClient:
    """Wrap ``client``'s transport (httpx2 keeps it as ``_transport``; no public setter exists);
    re-sends on stale connections are counted in ``reconnects``. Its pool looks each socket up once
    (``bench.clients.sockets``)."""
    cache_sockets(client._transport)  # noqa: SLF001
    client._transport = AsyncBoundedTransport(client._transport, timeout_s, max_bytes, reconnects)  # noqa: SLF001
    return client


def bound_sync(
    client: httpx2.Client, timeout_s: float, max_bytes: int, reconnects: Reconnects | None = None
) -> httpx2.Client:
    """``bound_async`` for a blocking client; its sockets also wait no longer than the attempt's deadline
    (httpcore2's pool keeps its backend as ``_network_backend``; no public setter exists)."""
    transport = client._transport  # noqa: SLF001
    pool = getattr(transport, "_pool", None)
    if isinstance(transport, httpx2.HTTPTransport) and isinstance(pool, httpcore2.ConnectionPool):
        pool._network_backend = _DeadlineBackend(pool._network_backend)  # noqa: SLF001
    client._transport = SyncBoundedTransport(transport, timeout_s, max_bytes, reconnects)  # noqa: SLF001
    return client
