"""Fixtures that start the mock OpenAI server as a separate process on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bench.engine.distributed.cluster import LOOPBACK_ONLY_ENV
from bench.mock import MockConfig, MockServer
from bench.mock.fork import ZYGOTE_ENV
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

RAY_TESTS = "tests/engine/distributed/"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist: shared set-ups run once, Ray runs on one worker, the slow tests start first.

    A test that uses a module-scoped fixture goes with the rest of its module (the fixture is
    built once, not once per worker); the Ray tests under distributed/ go to one worker, those of another
    module using ``ray_local`` with them (one Ray instance: each costs ~6 CPU-seconds to start, and its
    daemons' polling while it lives). Slow tests go to the front of the queue so that none of them starts last.
    """
    if not hasattr(config, "workerinput"):
        return  # a plain run keeps the file order
    for item in items:
        if item.nodeid.startswith(RAY_TESTS) or "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))
        elif any(fixture.scope == "module" for fixture in _fixture_defs(item)):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _fixture_defs(item: pytest.Item) -> list[Any]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [definition for definitions in info.name2fixturedefs.values() for definition in definitions]


@pytest.fixture(scope="session", autouse=True)
def _mock_zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Mock servers started in this process fork from one interpreter that has imported the mock
    (``bench.mock.zygote``): each is still its own process, started in milliseconds instead of ~0.3 s of
    imports. ``bench`` run as a process (``run_bench``, the docs' examples) starts its own, as users' does."""
    import subprocess

    path = tmp_path_factory.mktemp("zygote") / "socket"
    zygote = subprocess.Popen(
        [sys.executable, "-m", "bench.mock.zygote", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert zygote.stdout is not None
    assert zygote.stdin is not None
    ready = zygote.stdout.readline() == b"ready\n"
    if ready:
        os.environ[ZYGOTE_ENV] = str(path)
    yield
    os.environ.pop(ZYGOTE_ENV, None)
    zygote.stdin.close()
    zygote.stdout.close()
    try:
        zygote.wait(10)
    except subprocess.TimeoutExpired:
        zygote.kill()
        zygote.wait()


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


@pytest.fixture
def ray_local() -> Any:
    """One real local Ray instance (2 CPUs, no dashboard): no mock of Ray.

    A new instance, never a running cluster, on loopback (``LOOPBACK_ONLY_ENV`` above). The Ray tests run one
    after another on one worker (``pytest_collection_modifyitems``) and share it; it is shut down after the
    last of them (``pytest_runtest_teardown``), not at the session's end, so that its daemons do not poll
    for the rest of the run."""
    ray = pytest.importorskip("ray", reason='the Ray backend tests need the extra: pip install -e ".[ray]"')
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    return ray


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Shut the shared Ray instance down once the next test (if any) does not use it."""
    if "ray_local" not in getattr(item, "fixturenames", ()):
        return
    if nextitem is not None and "ray_local" in getattr(nextitem, "fixturenames", ()):
        return
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
