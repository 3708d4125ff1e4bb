"""The one event-loop factory: asyncio's loop on request, uvloop's when asked and installed."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from bench.core.loops import loop_factory, run

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_asyncio_is_asyncios_own_loop() -> None:
    assert loop_factory("asyncio") is None
    assert run(loop_type(), loop="asyncio") == "asyncio"


def test_auto_takes_uvloop_when_installed() -> None:
    assert (loop_factory("auto") is not None) == HAS_UVLOOP
    assert run(loop_type()) == ("uvloop" if HAS_UVLOOP else "asyncio")


@pytest.mark.skipif(HAS_UVLOOP, reason="uvloop is installed")
def test_uvloop_asked_for_but_missing_is_an_import_error() -> None:
    with pytest.raises(ImportError):
        loop_factory("uvloop")
