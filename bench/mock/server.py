"""Run the mock on aiohttp's low-level server: one process, one event loop (uvloop when installed).

aiohttp.web because it is a well-kept asyncio server, fast on uvloop, streams SSE natively, and is
the same library the harness uses as a raw client driver. The low-level ``web.Server`` skips the
router and middleware machinery; access logging is off (it would cost more than the handler);
connections are accepted by ``Listener`` (libuv alone starves new connections under load).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Final

from aiohttp import web

from bench.core.loops import run as run_on_loop
from bench.core.oslimits import raise_open_file_limit
from bench.mock.config import MockConfig
from bench.mock.listener import Listener
from bench.mock.service import MockService

BACKLOG: Final = 4096
SHUTDOWN_TIMEOUT_S: Final = 0.5


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` when stdin closes: the parent that started us has exited or let go."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, readable)


class _OneLine(logging.Filter):
    """Malformed requests (oversized headers, a negative Content-Length) are the client's fault, answered
    400 by aiohttp: say so in one line instead of a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            detail = " ".join(str(exc).split())[:160]
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {detail}", None
            record.exc_info, record.exc_text = None, None
        return True


def quiet_logger() -> logging.Logger:
    logger = logging.getLogger("bench.mock.http")
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
    return logger


async def serve(
    config: MockConfig,
    on_ready: Callable[[str], None],
    stop: asyncio.Event | None = None,
    *,
    watch_stdin: bool = False,
) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives, calling ``on_ready(url)`` once bound."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    if watch_stdin:
        _stop_on_stdin_eof(loop, stop)
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    service = MockService(config)
    # handler_cancellation: a client that disconnects (timeout, reset) cancels its handler, which
    # frees its capacity slot and in-flight count instead of sleeping on.
    server = web.Server(service.handle, handler_cancellation=True, access_log=None, logger=quiet_logger())
    runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    listener: Listener | None = None
    try:
        # Our own accept loop rather than web.TCPSite: see bench.mock.listener.
        listener = Listener(server, config.host, config.port, backlog=BACKLOG)
        # Long-lived startup objects need no scanning by the cyclic GC on every collection.
        gc.collect()
        gc.freeze()
        on_ready(_url(config.host, listener.port))
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        if listener is not None:
            await listener.close()
        await runner.cleanup()


def run(config: MockConfig, on_ready: Callable[[str], None], *, watch_stdin: bool = False) -> None:
    """Run the server in this process until SIGTERM/SIGINT (blocking)."""
    raise_open_file_limit()
    run_on_loop(serve(config, on_ready, watch_stdin=watch_stdin))
