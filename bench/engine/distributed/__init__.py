"""Beyond one machine: the Ray backend (``bench run --backend ray --workers W``).

Importing this package does not import Ray; ``ray_backend`` does, and fails with one line
(``RayUnavailable``) when the ``ray`` extra is not installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Final

from bench.engine.distributed.backend import WORKER_LOST, RayRunner
from bench.engine.distributed.cluster import RayUnavailable, connect, disconnect, node_ip
from bench.mock.config import MockConfig
from bench.mock.process import MockServer, start_mock

BACKENDS: Final = ("local", "ray")


def serve_mock(
    stack: contextlib.ExitStack, config: MockConfig, *, cluster: bool, where: str = ""
) -> tuple[MockServer, str]:
    """Start the mock (stopped with ``stack``) and the base URL workers use. On a cluster it listens on
    every interface and is named by this node's address, so workers on other nodes reach it."""
    if cluster:
        config = dataclasses.replace(config, host="0.0.0.0")
    server = start_mock(stack, config, where=where)
    url = server.base_url.replace("127.0.0.1", node_ip(), 1) if cluster else server.base_url
    return server, url


@contextlib.contextmanager
def ray_session(address: str | None, *, workers: int) -> Iterator[None]:
    """Ray for the length of a run: attached to ``address`` or a local instance started here."""
    started = connect(address, workers=workers)
    try:
        yield
    finally:
        if started:
            disconnect()


@contextlib.contextmanager
def closing_workers(runner: RayRunner) -> Iterator[RayRunner]:
    try:
        yield runner
    finally:
        runner.close()


__all__ = [
    "BACKENDS",
    "WORKER_LOST",
    "RayRunner",
    "RayUnavailable",
    "closing_workers",
    "node_ip",
    "ray_session",
]
