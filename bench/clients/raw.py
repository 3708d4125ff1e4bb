"""Raw HTTP drivers (httpx2, aiohttp), and the SDK on its aiohttp backend.

The raw drivers post the SDK's request (``bench.clients.wire``) and retry and classify as the SDK does;
they differ from the ``openai`` client only in the code that runs per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
import httpx2
from aiohttp.hdrs import CONTENT_ENCODING

from bench.clients.base import RETRY_COUNT_HEADER, AsyncChatClient, Endpoint, Outcome, RequestSettings, completed
from bench.clients.bounds import ResponseTooLarge, bound_async, bound_sync, check_body, declared_length, meter
from bench.clients.feedback import RateLimitFeedback
from bench.clients.reconnect import MAX_RECONNECTS, PROBE, Probe, Reconnects
from bench.clients.sdk import OpenAIAsyncClient, pool_limits
from bench.clients.streaming import SseReader, is_one_body
from bench.clients.trace import BODY, POOL_WAIT, MarkingConnector, Tracer
from bench.clients.warm import WAIT_S, models_url, warm_async, warm_blocking
from bench.clients.wire import RawRequest, Reply, session_headers
from bench.core.calls import Call


class _Observing:
    """Keeps every answer's rate-limit headers for ``adaptive``, as the SDK clients' hook does;
    marks where each call's time went when ``tracer`` is set."""

    rate_limits: RateLimitFeedback
    tracer: Tracer | None = None
    reconnects: Reconnects

    def _seen(self, reply: Reply, headers: Mapping[str, str]) -> Reply:
        retry = headers.get(RETRY_COUNT_HEADER, "0") != "0"
        self.rate_limits.observe(reply.status, reply.headers, retry)
        return reply

    def _traced(self, call: Call, outcome: Outcome) -> Outcome:
        reconnects = self.reconnects.take(call.call_id)
        trace = self.tracer.end(call.call_id) if self.tracer is not None else None
        if reconnects == outcome.reconnects and trace is None:
            return outcome
        return completed(outcome, trace=trace, reconnects=reconnects)  # the Outcome ``run`` has just built

    def _begin(self, call: Call) -> None:
        if self.tracer is not None:
            self.tracer.begin(call.call_id)


class HttpxDriver(_Observing):
    """A raw ``httpx2.AsyncClient`` (the SDK's transport, without the SDK), pool of ``pool_size``."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: RequestSettings,
        pool_size: int,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._request = RawRequest(endpoint, settings)
        self._endpoint_url = endpoint.base_url
        self._stream = settings.stream
        self.rate_limits = RateLimitFeedback()
        self.tracer = Tracer() if settings.trace else None
        self._http = httpx2.AsyncClient(
            headers=session_headers(endpoint),
            limits=pool_limits(pool_size),
            timeout=httpx2.Timeout(settings.timeout_s),
            transport=transport,
            event_hooks=self.tracer.httpx_hooks() if self.tracer is not None else None,
        )
        self.reconnects = Reconnects()
        bound_async(self._http, settings.timeout_s, settings.max_response_bytes, self.reconnects)

    async def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        if not self._stream:
            response = await self._http.post(self._request.url, content=body, headers=headers)
            return self._seen(Reply(response.status_code, response.headers, response.content), headers)
        async with self._http.stream("POST", self._request.url, content=body, headers=headers) as response:
            if response.status_code != 200 or is_one_body(response.headers):
                return self._seen(Reply(response.status_code, response.headers, await response.aread()), headers)
            reader = SseReader()
            async for line in response.aiter_lines():
                reader.feed(line, time.perf_counter())
            return self._seen(Reply(200, response.headers, reader.body(), reader), headers)

    async def complete(self, call: Call) -> Outcome:
        self._begin(call)
        return self._traced(call, await self._request.run(call, self._post, self.tracer))

    async def warm(self, connections: int) -> None:
        """Open ``connections`` connections at once, a ``GET /models`` each."""
        await warm_async(self._http, models_url(self._endpoint_url), {}, connections)

    async def aclose(self) -> None:
        await self._http.aclose()


class SyncHttpxDriver(_Observing):
    """The blocking ``httpx2.Client`` form of ``HttpxDriver``, shared by the threads strategy."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: RequestSettings,
        pool_size: int,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self._request = RawRequest(endpoint, settings)
        self._endpoint_url = endpoint.base_url
        self._stream = settings.stream
        self.rate_limits = RateLimitFeedback()
        self.tracer = Tracer() if settings.trace else None
        self._http = httpx2.Client(
            headers=session_headers(endpoint),
            limits=pool_limits(pool_size),
            timeout=httpx2.Timeout(settings.timeout_s),
            transport=transport,
            event_hooks=self.tracer.httpx_hooks(blocking=True) if self.tracer is not None else None,
        )
        self.reconnects = Reconnects()
        bound_sync(self._http, settings.timeout_s, settings.max_response_bytes, self.reconnects)

    def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        if not self._stream:
            response = self._http.post(self._request.url, content=body, headers=headers)
            return self._seen(Reply(response.status_code, response.headers, response.content), headers)
        with self._http.stream("POST", self._request.url, content=body, headers=headers) as response:
            if response.status_code != 200 or is_one_body(response.headers):
                return self._seen(Reply(response.status_code, response.headers, response.read()), headers)
            reader = SseReader()
            for line in response.iter_lines():
                reader.feed(line, time.perf_counter())
            return self._seen(Reply(200, response.headers, reader.body(), reader), headers)

    def complete(self, call: Call) -> Outcome:
        self._begin(call)
        return self._traced(call, self._request.run_blocking(call, self._post, self.tracer))

    def warm_blocking(self, connections: int) -> None:
        """Open ``connections`` connections at once, from as many threads."""
        warm_blocking(self._http, models_url(self._endpoint_url), {}, connections)

    def close(self) -> None:
        self._http.close()


class AiohttpDriver(_Observing):
    """A raw ``aiohttp.ClientSession`` with ``TCPConnector(limit=pool_size)``."""

    def __init__(self, endpoint: Endpoint, settings: RequestSettings, pool_size: int) -> None:
        self._request = RawRequest(endpoint, settings)
        self._stream = settings.stream
        self.rate_limits = RateLimitFeedback()
        self.tracer = Tracer() if settings.trace else None
        self._endpoint, self._pool_size = endpoint, max(1, pool_size)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._max_bytes = settings.max_response_bytes
        self.reconnects = Reconnects()
        self._session: aiohttp.ClientSession | None = None  # made in the loop that uses it

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=MarkingConnector(limit=self._pool_size),  # marks without aiohttp's TraceConfig
                headers=session_headers(self._endpoint),
                timeout=self._timeout,
            )
        return self._session

    async def _send(self, body: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """The response's head; a request that found its kept-alive connection stale is re-sent at once.

        The time split's marks, as the SDK's aiohttp backend places them with a ``TraceConfig``:
        ``pool_wait`` as the request is handed to aiohttp, ``connect``/``ttfb`` from the connector,
        ``body`` once the response's head is read."""
        marks = self.tracer.find(headers) if self.tracer is not None else None
        for resend in range(MAX_RECONNECTS + 1):
            probe = Probe(reused=False, marks=marks)  # MarkingConnector says when a pooled connection is reused
            token = PROBE.set(probe)
            try:
                if marks is not None:
                    marks.mark(POOL_WAIT)
                response = await self._open().post(self._request.url, data=body, headers=headers, allow_redirects=False)
            except Exception as exc:
                if resend == MAX_RECONNECTS or not probe.stale(exc):
                    raise
                self.reconnects.add(headers)
            else:
                if marks is not None:
                    marks.mark(BODY)
                return response
            finally:
                PROBE.reset(token)
        raise AssertionError("unreachable")

    async def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        async with await self._send(body, headers) as response:
            if not self._stream or response.status != 200 or is_one_body(response.headers):
                return self._seen(Reply(response.status, response.headers, await self._read(response)), headers)
            check_body(response.status, response.headers, self._max_bytes, None)
            reader, pending, counted = SseReader(), b"", meter(response.headers, self._max_bytes)
            async for chunk in response.content.iter_any():
                if counted.over(chunk):  # a stream is a body too: the same cap
                    raise ResponseTooLarge(response.status, self._max_bytes)
                now = time.perf_counter()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    reader.feed(line, now)
            if pending:
                reader.feed(pending, time.perf_counter())
            return self._seen(Reply(200, response.headers, reader.body(), reader), headers)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        headers = response.headers
        length = declared_length(headers)
        if length is not None and length > self._max_bytes:
            raise ResponseTooLarge(response.status, self._max_bytes)
        if length is not None and CONTENT_ENCODING not in headers:
            return await response.read()  # aiohttp reads the declared length and no more; nothing to inflate
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > self._max_bytes:
                raise ResponseTooLarge(response.status, self._max_bytes)
        return bytes(body)

    async def complete(self, call: Call) -> Outcome:
        self._begin(call)
        return self._traced(call, await self._request.run(call, self._post, self.tracer))

    async def warm(self, connections: int) -> None:
        """Open ``connections`` connections at once, a ``GET /models`` each."""
        url, barrier = models_url(self._endpoint.base_url), asyncio.Barrier(connections)

        async def one() -> None:
            async with self._open().get(url) as response:
                await asyncio.wait_for(barrier.wait(), WAIT_S)  # hold it until every one is open
                await response.read()

        await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def openai_aiohttp(endpoint: Endpoint, settings: RequestSettings, pool_size: int) -> AsyncChatClient:
    """``AsyncOpenAI`` on the SDK's own aiohttp backend."""
    return OpenAIAsyncClient(endpoint, settings, pool_size, aiohttp=True)
