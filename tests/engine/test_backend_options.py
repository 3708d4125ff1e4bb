"""``RunOptions`` carries the backend (local or Ray), so every caller of ``run_benchmark`` can choose it."""

from __future__ import annotations

import pytest

from bench.engine.errors import OptionsError
from bench.engine.options import RunOptions


def test_ray_options_are_validated_and_kept_in_the_flat_params() -> None:
    options = RunOptions.from_params({"backend": "ray", "workers": 4, "ray_address": "10.0.0.1:6379"})
    assert (options.backend.backend, options.backend.workers, options.backend.ray_address) == (
        "ray",
        4,
        "10.0.0.1:6379",
    )
    flat = options.params()
    assert (flat["backend"], flat["workers"], flat["ray_address"]) == ("ray", 4, "10.0.0.1:6379")
    assert RunOptions.from_params(flat).backend == options.backend  # run.json → the same run on resume


def test_runs_are_local_by_default() -> None:
    options = RunOptions.from_params({})
    assert (options.backend.backend, options.backend.workers, options.backend.ray_address) == ("local", 1, None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"workers": 2}, "--workers and --ray-address need --backend ray", id="workers-alone"),
        pytest.param({"ray_address": "auto"}, "--workers and --ray-address need --backend ray", id="address-alone"),
        pytest.param({"backend": "spark"}, "'spark' is not one of local, ray", id="unknown-backend"),
        pytest.param({"backend": "ray", "workers": 0}, "--workers", id="no-workers"),
    ],
)
def test_bad_backend_options_are_one_line(params: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        RunOptions.from_params(params)
    assert message in caught.value.describe()


@pytest.mark.parametrize(
    "endpoints",
    [
        pytest.param(["http://127.0.0.1:1/v1,rpm=600"], id="one-endpoint"),
        pytest.param(["http://127.0.0.1:1/v1,rpm=600", "http://127.0.0.1:2/v1,rpm=1200"], id="two-endpoints"),
    ],
)
def test_ray_paces_at_the_limits_stated_on_endpoints(endpoints: list[str]) -> None:
    params = {"strategies": ["rate_limited"], "endpoints": endpoints, "backend": "ray", "workers": 2}
    assert RunOptions.from_params(params).workload.rpm is None  # the endpoints' own limits, split by the workers
