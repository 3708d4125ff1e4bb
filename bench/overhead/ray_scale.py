"""One process against W Ray workers: req/s and CPU per call against the zero-latency mock.

Each round runs the same cell locally, then on Ray at each W, interleaved; figures are the
medians. CPU counts every process on the client side: the driver, plus each Ray worker's own
CPU time over its share (the mock server's is left out).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.engine.distributed import RayRunner
from bench.engine.folder import execute
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.runner import CellMeta, CellRunner, RunnerConfig
from bench.mock import MockConfig, MockServer


@dataclass(frozen=True, kw_only=True)
class ScalePoint:
    """Medians over rounds for one backend and worker count."""

    backend: str
    workers: int
    calls: int
    rps: float
    cpu_per_call_ms: float
    driver_cpu_per_call_ms: float  # the driver's part: receiving and writing rows (all of it when local)
    server_peak_in_flight: int


async def _one_cell(runner: CellRunner, plan: RunPlan) -> tuple[CellMeta, float]:
    with tempfile.TemporaryDirectory() as folder:
        cpu = time.process_time()
        [meta] = await execute(plan, runner, Path(folder))
        return meta, time.process_time() - cpu


def measure_ray_scale(
    *, calls: int, concurrency: int, workers: Sequence[int], rounds: int, client: str = "openai"
) -> list[ScalePoint]:
    """Local vs Ray at each W in ``workers``; Ray must already be connected (``ray_session``)."""
    plan = RunPlan(
        label="ray-scale",
        cells=tuple(matrix_cells(calls_for_count(load_personas(), calls), ["semaphore"], [concurrency])),
    )
    samples: dict[tuple[str, int], list[tuple[float, float, float, int]]] = {}
    with MockServer(MockConfig(latency="zero")) as server:
        endpoint = Endpoint(base_url=server.base_url, api_key="mock-key", is_mock=True)
        settings = RequestSettings(max_retries=0, timeout_s=60)
        config = RunnerConfig(run_id="ray-scale", endpoint=endpoint, settings=settings, client=client)
        ray_runners = {w: RayRunner(config=config, workers=w, probe=server) for w in workers}
        local = config.runner(stop=threading.Event(), probe=server)
        try:
            order: list[tuple[tuple[str, int], CellRunner]] = [(("local", 1), local)]
            order += [(("ray", w), r) for w, r in ray_runners.items()]
            for _ in range(rounds):
                for key, runner in order:
                    meta, driver_cpu = asyncio.run(_one_cell(runner, plan))
                    if isinstance(runner, RayRunner):
                        runner.close()  # free its CPUs for the next W (workers start again, off the clock)
                    worker_cpu = sum(float(w.get("cpu_s", 0.0)) for w in meta.workers or [])
                    peak = meta.server.peak_in_flight if meta.server is not None else 0
                    samples.setdefault(key, []).append((calls / meta.wall_s, driver_cpu + worker_cpu, driver_cpu, peak))
        finally:
            for runner in ray_runners.values():
                runner.close()
    return [
        ScalePoint(
            backend=backend,
            workers=w,
            calls=calls,
            rps=statistics.median(s[0] for s in found),
            cpu_per_call_ms=statistics.median(s[1] for s in found) / calls * 1e3,
            driver_cpu_per_call_ms=statistics.median(s[2] for s in found) / calls * 1e3,
            server_peak_in_flight=max(s[3] for s in found),
        )
        for (backend, w), found in samples.items()
    ]
