"""pytest fixtures for your own tests against OpenAI-faithful rate limits (registered via ``pytest11``).

Installing the package is enough: no import, no conftest.

- ``bench_mock(**options)`` starts the real mock server process (``rpm``, ``tpm``, ``burst_seconds``,
  ``max_concurrency``, ``latency``, ``error_rate``, ``rate_limit_rate``, ``quota``, …: any
  ``bench.mock.MockConfig`` field; a number as ``latency`` means fixed seconds) and returns a
  handle with ``.base_url``, ``.stats()`` and ``.reset()``. Servers stop after the test, pass or fail.
  ``bench_mock(profile="azure-openai")`` speaks another provider's dialect (``bench profile list``);
  limits given alongside win over the profile's.
- ``openai_respx(**options)`` answers the same way in-process through respx (no process, no
  socket), for clients on httpx or on the openai SDK (httpx2); ``.base_url``, ``.stats()``, ``.reset()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bench.mock.config import MockConfig
from bench.mock.handle import MockHandle
from bench.mock.process import MockServer
from bench.mock.stats import ServerStats

DEFAULT_TEST_LATENCY = "zero"  # the mock's default (2.6 s lognormal) suits benchmarks, not tests
RESPX_BASE_URL = "https://api.openai.mock/v1"


def _config(options: dict[str, Any]) -> MockConfig:
    latency = options.pop("latency", DEFAULT_TEST_LATENCY)
    if isinstance(latency, int | float) and not isinstance(latency, bool):
        latency = f"fixed:{latency:g}"
    return MockConfig(latency=latency, **options)


@pytest.fixture
def bench_mock() -> Iterator[Callable[..., MockHandle]]:
    """``bench_mock(rpm=60, burst_seconds=1, latency=0.05)`` → a started mock server's handle."""
    servers: list[MockServer] = []

    def start(**options: Any) -> MockHandle:
        server = MockServer(_config(dict(options)))
        servers.append(server)
        server.start()
        return MockHandle(server)

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@dataclass(frozen=True)
class RespxHandle:
    """What ``openai_respx(...)`` returns."""

    base_url: str
    answers: Any  # bench.mock.inprocess.InProcessAnswers

    def stats(self) -> ServerStats:
        stats: ServerStats = self.answers.stats()
        return stats

    def reset(self) -> None:
        self.answers.reset()


@pytest.fixture
def openai_respx() -> Iterator[Callable[..., RespxHandle]]:
    """``openai_respx(rpm=60, base_url=...)`` → in-process OpenAI answers on ``base_url`` (needs respx)."""
    respx = pytest.importorskip("respx")
    pytest.importorskip("pytest_httpx2")  # registers respx's mocker for httpcore2, the openai SDK's transport
    from bench.mock.inprocess import InProcessAnswers

    with contextlib.ExitStack() as stack:

        def start(*, base_url: str = RESPX_BASE_URL, **options: Any) -> RespxHandle:
            answers = InProcessAnswers(**options)
            url = base_url.rstrip("/") + "/chat/completions"
            for using in ("httpcore", "httpcore2"):  # httpx clients, and the openai SDK's httpx2
                router = stack.enter_context(respx.mock(using=using, assert_all_called=False))
                router.post(url).mock(side_effect=answers)
            return RespxHandle(base_url=base_url, answers=answers)

        yield start
