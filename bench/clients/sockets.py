"""Idle pooled connections checked on a socket looked up once, not once per check.

Before every request is assigned, httpcore2's pool asks each idle connection whether the server has
closed it (``has_expired`` → ``get_extra_info("is_readable")``). On its anyio backend each such question
rebuilds anyio's ``extra_attributes`` table, which calls ``getpeername()``: with C connections that is
about C/2 system calls and dict builds per request (~47 at C = 100, ~10 % of the SDK path's CPU at zero
latency). ``CachedSocketBackend`` hands out streams that look their socket up once, at connect, and
answer ``is_readable`` with the same ``poll`` httpcore2 uses: the same answer, without the table.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Coroutine, Iterable
from typing import Any

import httpcore2
import httpx2


def is_socket_readable(sock: socket.socket) -> bool:
    """httpcore2's test (``_utils.is_socket_readable``): a closed socket, or one with bytes waiting, is readable."""
    fd = sock.fileno()
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class CachedSocketStream(httpcore2.AsyncNetworkStream):
    """``inner`` with its raw socket looked up once; everything else is passed straight through."""

    __slots__ = ("_inner", "_socket")

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    # Plain methods returning the inner coroutine: no extra coroutine frame per read or write.
    def read(self, max_bytes: int, timeout: float | None = None) -> Coroutine[Any, Any, bytes]:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        return self._inner.write(buffer, timeout)

    def aclose(self) -> Coroutine[Any, Any, None]:
        return self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore2.AsyncNetworkStream:
        return CachedSocketStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        if info == "socket" and self._socket is not None:
            return self._socket
        return self._inner.get_extra_info(info)


class CachedSocketBackend(httpcore2.AsyncNetworkBackend):
    """A network backend whose streams are ``CachedSocketStream``s."""

    def __init__(self, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return CachedSocketStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return CachedSocketStream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def cache_sockets(transport: httpx2.AsyncBaseTransport) -> None:
    """Give ``transport``'s pool a ``CachedSocketBackend`` (httpcore2 keeps it as ``_network_backend``; no
    public setter exists). Other transports (the SDK's aiohttp one, a test's mock) are left as they are."""
    pool = getattr(transport, "_pool", None)
    if isinstance(transport, httpx2.AsyncHTTPTransport) and isinstance(pool, httpcore2.AsyncConnectionPool):
        backend = pool._network_backend  # noqa: SLF001
        if not isinstance(backend, CachedSocketBackend):
            pool._network_backend = CachedSocketBackend(backend)  # noqa: SLF001
