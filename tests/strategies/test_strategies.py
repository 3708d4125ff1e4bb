"""Every strategy against an in-process endpoint: each call answered once, bounds observed."""

from __future__ import annotations

import pytest

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.sdk import OpenAIAsyncClient, OpenAISyncClient
from bench.core.calls import build_calls, load_personas
from bench.core.records import CallRecord
from bench.engine.runner import CellSpec, Runner
from strategies import STRATEGIES
from tests.support.fakes import CountingEndpoint, vote_for

ENDPOINT = Endpoint(base_url="http://fake.test/v1", api_key="unit-test-key")
N_CALLS, C = 40, 8


def make_runner(fake: CountingEndpoint, rows: list[CallRecord]) -> Runner:
    return Runner(
        run_id="unit",
        endpoint=ENDPOINT,
        settings=RequestSettings(max_retries=0, timeout_s=10),
        emit=rows.append,
        client_factory=lambda e, s, n: OpenAIAsyncClient(e, s, n, transport=fake.async_transport()),
        sync_client_factory=lambda e, s, n: OpenAISyncClient(e, s, n, transport=fake.sync_transport()),
    )


def expected_peak(strategy: str) -> tuple[int, int]:
    """(lowest, highest) peak in flight the endpoint should see."""
    if strategy == "sequential":
        return 1, 1
    if strategy == "gather":
        return N_CALLS, N_CALLS
    if strategy == "rate_limited":  # paced at 1 ms a call, 10 ms each: never more than C
        return 2, C
    if strategy == "adaptive":  # no rate-limit headers here: it starts at 1 call a second, doubling
        return 1, C
    if STRATEGIES[strategy].traits.open_loop:  # arrivals every 0.5 ms, capped at C
        return 2, C
    return C, C


# Strategies that send chat completions (batch_api uploads files instead: tests/strategies/test_batch_api.py).
CHAT_STRATEGIES = [name for name, cls in STRATEGIES.items() if not cls.traits.batch]


@pytest.mark.parametrize("strategy", [pytest.param(name, id=name) for name in CHAT_STRATEGIES])
async def test_each_call_answered_once_within_bounds(strategy: str) -> None:
    low, high = expected_peak(strategy)
    # Calls are held until the exact bound is reached, so the peak does not depend on speed.
    fake, rows = CountingEndpoint(delay_s=0.01, hold_until=high if low == high else 0), list[CallRecord]()
    calls = tuple(build_calls(load_personas(limit=N_CALLS // 2), repeats=2))
    spec = CellSpec(scenario="unit", strategy=strategy, concurrency=C, calls=calls, rpm=60_000.0, rate=2000.0)

    meta = await make_runner(fake, rows).run_cell(spec)

    assert len(rows) == N_CALLS
    assert {r.call_id for r in rows} == {c.call_id for c in calls}
    assert set(fake.hits.values()) == {1}
    assert len(fake.hits) == N_CALLS
    assert all(r.status == "ok" and r.attempts == 1 and r.http_status == 200 for r in rows)
    assert all(r.answer == vote_for(r.call_id) for r in rows)
    assert all(0 <= r.start_s <= r.end_s <= meta.wall_s for r in rows)
    assert low <= fake.peak <= high
    assert meta.max_in_flight == fake.peak or strategy == "threads"
    assert meta.sent == N_CALLS


async def test_batched_starts_no_call_before_the_previous_batch_ends() -> None:
    fake, rows = CountingEndpoint(delay_s=0.005), list[CallRecord]()
    calls = tuple(build_calls(load_personas(limit=20)))
    spec = CellSpec(scenario="unit", strategy="batched", concurrency=6, calls=calls)
    await make_runner(fake, rows).run_cell(spec)
    by_start = sorted(rows, key=lambda r: r.start_s)
    batches = [by_start[i : i + 6] for i in range(0, len(by_start), 6)]
    for earlier, later in zip(batches, batches[1:], strict=False):
        assert max(r.end_s for r in earlier) <= min(r.start_s for r in later)


async def test_stopped_runner_sends_nothing_more() -> None:
    fake, rows = CountingEndpoint(), list[CallRecord]()
    runner = make_runner(fake, rows)
    runner.stop.set()
    calls = tuple(build_calls(load_personas(limit=5)))
    meta = await runner.run_cell(CellSpec(scenario="unit", strategy="semaphore", concurrency=2, calls=calls))
    assert rows == []
    assert sum(fake.hits.values()) == 0
    assert meta.sent == 0
    assert meta.interrupted
