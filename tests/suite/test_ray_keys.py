"""Suites name their backend: ``backend``, ``workers`` and ``ray_address`` under [suite]."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.suite.config import SuiteError, parse_suite

EXPERIMENT = '[[experiment]]\nstrategies = ["semaphore"]\nconcurrency = [4]\n'


def test_a_suite_can_run_on_ray_workers() -> None:
    text = f'[suite]\nbackend = "ray"\nworkers = 2\nray_address = "10.0.0.1:6379"\n{EXPERIMENT}'
    suite = parse_suite(text, source=Path("s.toml"))
    assert (suite.backend, suite.workers, suite.ray_address) == ("ray", 2, "10.0.0.1:6379")


def test_a_suite_runs_locally_by_default() -> None:
    suite = parse_suite(f"[suite]\n{EXPERIMENT}", source=Path("s.toml"))
    assert (suite.backend, suite.workers, suite.ray_address) == ("local", 1, None)


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        pytest.param('backend = "spark"', "suite.backend: expected", id="unknown-backend"),
        pytest.param("workers = 2", 'suite.workers: needs backend = "ray"', id="workers-without-ray"),
        pytest.param('backend = "ray"\nworkers = 0', "suite.workers: expected a whole number", id="no-workers"),
    ],
)
def test_bad_backend_keys_name_the_key(suite: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message.replace(".", r"\.")):
        parse_suite(f"[suite]\n{suite}\n{EXPERIMENT}", source=Path("s.toml"))
