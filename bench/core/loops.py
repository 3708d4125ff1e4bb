"""The one event-loop factory: asyncio's default loop, or uvloop's (light to import: no asyncio)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

T = TypeVar("T")
Loop = Literal["auto", "asyncio", "uvloop"]
LOOPS: Final = ("asyncio", "uvloop")  # the event loops a measurement may choose


def loop_factory(loop: Loop = "auto") -> Callable[[], AbstractEventLoop] | None:
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
    factory: Callable[[], AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], *, loop: Loop = "auto") -> T:
    """Run ``coro`` to completion on a fresh loop of the given kind."""
    import asyncio

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(coro)
