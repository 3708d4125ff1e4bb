"""Suites name their backend: ``backend``, ``workers`` and ``ray_address`` under [suite]."""

from __future__ import annotations

import pytest

from bench.suite.config import SuiteError
from tests.support.suites import plan_text

EXPERIMENT = '[[experiment]]\nstrategies = ["semaphore"]\nconcurrency = [4]\n'


def test_a_suite_can_run_on_ray_workers() -> None:
    text = f'[suite]\nbackend = "ray"\nworkers = 2\nray_address = "10.0.0.1:6379"\n{EXPERIMENT}'
    backend = plan_text(text).options.backend
    assert (backend.backend, backend.workers, backend.ray_address) == ("ray", 2, "10.0.0.1:6379")


def test_a_suite_runs_locally_by_default() -> None:
    backend = plan_text(f"[suite]\n{EXPERIMENT}").options.backend
    assert (backend.backend, backend.workers, backend.ray_address) == ("local", 1, None)


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        pytest.param('backend = "spark"', "suite.backend: 'spark' is not one of local, ray", id="unknown-backend"),
        pytest.param("workers = 2", "suite: --workers and --ray-address need --backend ray", id="workers-without-ray"),
        pytest.param('backend = "ray"\nworkers = 0', "suite.workers: must be at least 1, got 0", id="no-workers"),
    ],
)
def test_bad_backend_keys_name_the_key(suite: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message.replace(".", r"\.")):
        plan_text(f"[suite]\n{suite}\n{EXPERIMENT}")
