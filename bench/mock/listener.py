"""Accept connections ourselves, draining the accept queue on every wake-up.

libuv (under uvloop) accepts one connection per event-loop iteration (libuv PR #3696). When the
server is busy, an iteration that answers a few hundred requests takes tens of milliseconds, so
new connections waited in the kernel's queue for seconds: a client ramping up to 1,000
connections saw its first requests time out while the rest were served in 50 ms. Accepting in a
loop here and handing each socket to ``loop.connect_accepted_socket`` keeps uvloop's speed
without that starvation (and works the same on asyncio's own loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Final

# Enough to drain a burst without stalling the connections already being served.
MAX_ACCEPTS_PER_WAKEUP: Final = 1024


class Listener:
    """A listening TCP socket whose connections are served by ``protocol_factory``."""

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str,
        port: int,
        *,
        backlog: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._factory = protocol_factory
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=backlog)
        self._sock.setblocking(False)
        self._adopting: set[asyncio.Task[None]] = set()
        self._loop.add_reader(self._sock.fileno(), self._accept)

    @property
    def port(self) -> int:
        port: int = self._sock.getsockname()[1]
        return port

    def _accept(self) -> None:
        for _ in range(MAX_ACCEPTS_PER_WAKEUP):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # EMFILE, ECONNABORTED…: leave the rest queued; we are woken again.
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._adopt(conn))
            self._adopting.add(task)
            task.add_done_callback(self._adopting.discard)

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except (OSError, RuntimeError):
            conn.close()

    async def close(self) -> None:
        """Stop accepting; connections already accepted are left to their protocol."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        for task in self._adopting:
            task.cancel()
        await asyncio.gather(*self._adopting, return_exceptions=True)
