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


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """One real local Ray instance for the session (2 CPUs, no dashboard): no mock of Ray.

    A new instance, never a running cluster, on loopback (``LOOPBACK_ONLY_ENV`` above); every Ray test shares it."""
    ray = pytest.importorskip("ray", reason='the Ray backend tests need the extra: pip install -e ".[ray]"')
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
