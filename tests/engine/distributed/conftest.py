"""One real local Ray instance for the session (2 CPUs, no dashboard): no mock of Ray."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason='the Ray backend tests need the extra: pip install -e ".[ray]"')
    # A new instance, never a running cluster; on loopback (tests/conftest.py sets LOOPBACK_ONLY_ENV).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
