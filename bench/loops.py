"""The one event-loop factory: asyncio's default loop, or uvloop's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal, TypeVar

T = TypeVar("T")
Loop = Literal["auto", "asyncio", "uvloop"]
LOOPS: Final = ("asyncio", "uvloop")


def loop_factory(loop: Loop = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner``; None means asyncio's default loop.

    ``auto`` takes uvloop when it is importable; ``uvloop`` raises ImportError when it is not.
    """
    if loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], *, loop: Loop = "auto") -> T:
    """Run ``coro`` to completion on a fresh loop of the given kind."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(coro)
