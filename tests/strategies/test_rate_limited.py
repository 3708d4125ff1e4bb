"""rate_limited in virtual time against the mock's buckets: an honest start, the target rate, no 429s."""

from __future__ import annotations

import asyncio

import pytest
from aiolimiter import AsyncLimiter

from bench.core.calls import Call
from strategies import Knobs
from strategies.rate_limited import BURST_S, Schedule, call_tokens, primed_limiter
from tests.support.virtual_time import MAX_TOKENS, calls, run_strategy, run_virtual


def knobs(rpm: float | None = None, tpm: float | None = None, concurrency: int = 100) -> Knobs:
    return Knobs(concurrency=concurrency, rpm=rpm, tpm=tpm, max_tokens=MAX_TOKENS)


def intended_schedule(work: list[Call], knobs: Knobs) -> list[float]:
    schedule = Schedule(rpm=knobs.rpm, tpm=knobs.tpm)
    return [schedule.next(call_tokens(call, knobs.max_tokens)) for call in work]


def test_intended_schedule_spaces_requests_and_tokens() -> None:
    work = calls(4)
    costs = [call_tokens(c, MAX_TOKENS) for c in work]
    assert intended_schedule(work, knobs(rpm=600)) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    by_tokens = [sum(costs[1 : i + 1]) * 60 / 30_000 for i in range(4)]  # the first call's tokens go at once
    assert intended_schedule(work, knobs(tpm=30_000)) == pytest.approx(by_tokens)
    both = intended_schedule(work, knobs(rpm=6000, tpm=30_000))
    assert both == pytest.approx([max(i * 0.01, t) for i, t in enumerate(by_tokens)])


def test_plain_aiolimiter_sends_a_whole_period_at_once() -> None:
    """Why the strategy primes its limiters: an empty aiolimiter bucket is a burst waiting to happen."""

    async def burst(limiter: AsyncLimiter) -> list[float]:
        loop, sent = asyncio.get_running_loop(), []
        for _ in range(20):
            await limiter.acquire()
            sent.append(loop.time())
        return sent

    async def both() -> tuple[list[float], list[float]]:
        return await burst(AsyncLimiter(600, 60)), await burst(await primed_limiter(600, 1, 1))

    plain, primed = run_virtual(both())
    assert plain[-1] - plain[0] < 1e-3  # 20 requests in the same instant
    assert [b - a for a, b in zip(primed, primed[1:], strict=False)] == pytest.approx([0.1] * 19, abs=1e-5)


@pytest.mark.parametrize("rpm", [pytest.param(600, id="600rpm"), pytest.param(3000, id="3000rpm")])
def test_at_the_servers_rpm_the_start_is_spread_and_nothing_is_refused(rpm: int) -> None:
    n = rpm // 10  # six seconds' worth
    server, sender = run_strategy("rate_limited", calls(n), knobs(rpm=rpm), rpm=rpm)
    assert server.http_429s == 0
    assert len(sender.records) == n
    starts = [r.start_s for r in sender.records]
    assert starts[1] - starts[0] == pytest.approx(60 / rpm, rel=1e-3)  # no burst at the start
    count, _ = server.admitted_between(1.0, 5.0)
    assert count == pytest.approx(4 * rpm / 60, abs=1)
    assert all(r.start_s - r.scheduled_s == pytest.approx(0, abs=1e-3) for r in sender.records)


def test_at_the_servers_tpm_nothing_is_refused_and_tokens_flow_at_the_limit() -> None:
    tpm = 240_000
    server, sender = run_strategy("rate_limited", calls(300), knobs(tpm=tpm), tpm=tpm)
    assert server.http_429s == 0
    assert len(sender.records) == 300
    _, tokens = server.admitted_between(2.0, 12.0)
    assert tokens == pytest.approx(10 * tpm / 60, rel=0.02)


def test_a_full_window_delays_sends_and_the_catch_up_stays_within_the_burst() -> None:
    rpm, latency = 1200, 0.3  # 20 a second would need 6 in flight; the window allows 2
    server, sender = run_strategy("rate_limited", calls(60), knobs(rpm=rpm, concurrency=2), rpm=rpm, latency_s=latency)
    assert server.http_429s == 0
    assert server.peak_in_flight == 2
    late = [r.start_s - r.scheduled_s for r in sender.records]
    assert late[-1] > 1.0  # measured from the schedule, the window's queueing shows
    starts = sorted(r.start_s for r in sender.records)
    burst = max(1.0, rpm / 60 * BURST_S)
    for i, first in enumerate(starts):  # never more than burst + rate × span in any span
        inside = [s for s in starts[i:] if s - first <= 0.5]
        assert len(inside) <= burst + 1 + rpm / 60 * 0.5


def test_stops_sending_once_the_run_is_stopping() -> None:
    server, sender = run_strategy("rate_limited", calls(50), knobs(rpm=6000), stop_after=10, rpm=6000)
    assert len(sender.records) == 10
    assert server.attempts == 10


def test_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="needs --rpm"):
        run_strategy("rate_limited", calls(5), knobs())
