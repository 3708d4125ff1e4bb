"""Fixtures that start the mock OpenAI server as a separate process on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from bench.engine.distributed.cluster import LOOPBACK_ONLY_ENV
from bench.mock import MockConfig, MockServer
from tests.support.servers import MockServerFactory

# Tests reach no address but loopback: a Ray node started here (in this process or a child, which
# inherits the environment) takes 127.0.0.1, not the machine's address. Set before Ray is imported.
os.environ[LOOPBACK_ONLY_ENV] = "0"

# pytest imports readline before this file, and GNU readline exports the terminal's size (80 x 24 when
# there is none) into the environment that pytest-xdist's workers and ``bench`` child processes
# inherit: the CLI would then wrap its output at 80 columns under xdist and at 150 without it. A test
# that means a width sets COLUMNS itself.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
    os.unsetenv(_name)  # readline set it below os.environ, where a child with env=None still sees it

# The fixtures users get from the installed package (``pytest11``); named so that pytest loads it once.
pytest_plugins = ["bench.pytest_plugin"]

@pytest.fixture
def mock_server_factory() -> Iterator[MockServerFactory]:
    """``factory(**MockConfig fields)`` → a started ``MockServer``; all are stopped at teardown."""
    servers: list[MockServer] = []

    def start(**config: Any) -> MockServer:
        server = MockServer(MockConfig(**config))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def _shared_mock_server() -> Iterator[MockServer]:
    with MockServer(MockConfig(latency="fixed:0.05", seed=0)) as server:
        yield server


@pytest.fixture
def mock_server(_shared_mock_server: MockServer) -> MockServer:
    """A mock at fixed 0.05 s latency, seed 0, shared by the session; its stats are reset per test."""
    _shared_mock_server.reset_stats()
    return _shared_mock_server
