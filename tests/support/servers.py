"""Types shared by the tests that start mock servers."""

from __future__ import annotations

from collections.abc import Callable

from bench.mock import MockServer

MockServerFactory = Callable[..., MockServer]
