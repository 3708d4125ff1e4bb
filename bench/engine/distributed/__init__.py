"""Beyond one machine: the Ray backend (``bench run --backend ray --workers W``).

Importing this package does not import Ray; ``ray_backend`` does, and fails with one line
(``RayUnavailable``) when the ``ray`` extra is not installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from bench.engine.distributed.backend import WORKER_LOST, RayRunner
from bench.engine.distributed.cluster import RayUnavailable, connect, disconnect, node_ip

BACKENDS: Final = ("local", "ray")


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
