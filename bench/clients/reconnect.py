"""Stale keep-alive connections: a request re-sent at once on a new connection, not a retry.

A server may close a kept-alive connection at any moment after a reply (llama.cpp closes it after
every streamed one, with or without ``Connection: close``). A request sent on such a connection
fails before any byte of a response arrives; the server never saw it. Like browsers and Go's
``net/http``, the clients re-send it at once on a new connection instead of letting the SDK's retry
rules back off and count an attempt; the ``reconnects`` column counts these re-sends apart.

What marks a stale connection: the attempt reused a pooled connection (httpcore2's ``trace`` shows
no connect; aiohttp's connector, ``bench.clients.trace.MarkingConnector``, made none) and it failed by a reset or
an end of stream before the response's status line (never a timeout, never a garbled reply).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Final, Protocol

import aiohttp
import httpx2

from bench.clients.headers import CALL_ID_HEADER

# How many stale connections one attempt may meet in a row (each is dropped from the pool, so more
# than the pool holds means the server closes fresh connections too: a failure, not staleness).
MAX_RECONNECTS: Final = 8
_NO_RESPONSE: Final = "without sending a response"  # httpcore2: the end of stream before any byte

Trace = Callable[[str, Mapping[str, Any]], Any]


class Marks(Protocol):
    """Where a call's time goes (``bench.clients.trace.CallTrace``): a part starts now."""

    def mark(self, part: str) -> None: ...


class Probe:
    """What one attempt did with its connection; ``marks``, when set, hears when it connects (aiohttp)."""

    __slots__ = ("marks", "reused")

    def __init__(self, *, reused: bool, marks: Marks | None = None) -> None:
        self.reused, self.marks = reused, marks

    def see(self, event: str) -> None:
        """An httpcore2 trace event: a connect means a new connection."""
        if event.startswith("connection.connect_"):
            self.reused = False

    def stale(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a reused connection that was already closed (no response began)."""
        if not self.reused:
            return False
        cause = exc.__cause__ if isinstance(exc, httpx2.ConnectTimeout) else exc  # the SDK's aiohttp mapping
        if isinstance(cause, httpx2.TimeoutException | aiohttp.ServerTimeoutError | TimeoutError):
            return False
        if isinstance(cause, httpx2.ReadError | httpx2.WriteError):
            return True
        if isinstance(cause, httpx2.RemoteProtocolError):
            return _NO_RESPONSE in str(cause)
        return isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError) and not isinstance(
            cause, aiohttp.ClientConnectorError
        )

    def httpcore(self, inner: Trace | None) -> Trace:
        """A blocking httpcore2 ``trace`` extension that watches, then calls ``inner``."""

        def trace(event: str, info: Mapping[str, Any]) -> None:
            self.see(event)
            if inner is not None:
                inner(event, info)

        return trace

    def ahttpcore(self, inner: Trace | None, blocking_inner: Trace | None = None) -> Trace:
        """The async form of ``httpcore``; ``blocking_inner``, when given, is called instead of awaiting
        ``inner`` (the same marks without one more coroutine per event)."""

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            self.see(event)
            if blocking_inner is not None:
                blocking_inner(event, info)
            elif inner is not None:
                await inner(event, info)

        return trace


# The attempt an aiohttp request belongs to: its connector's ``connect`` runs in the sending task.
PROBE: ContextVar[Probe | None] = ContextVar("bench_reconnect_probe", default=None)


class Reconnects:
    """Re-sends per call id, taken once by the client when the call ends (thread-safe)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, headers: Mapping[str, str]) -> None:
        call_id = headers.get(CALL_ID_HEADER, "")
        with self._lock:
            self._counts[call_id] = self._counts.get(call_id, 0) + 1

    def take(self, call_id: str) -> int:
        if not self._counts:  # the usual case, without the lock: a call's own re-sends were added before it ends
            return 0
        with self._lock:
            return self._counts.pop(call_id, 0)
