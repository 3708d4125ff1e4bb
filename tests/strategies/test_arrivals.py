"""Open-loop strategies: seeded arrival times, and the server sees them as planned."""

from __future__ import annotations

import statistics

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.engine.runner import CellSpec, Runner
from bench.mock import MockServer
from strategies import STRATEGIES
from strategies.arrivals import ArrivalShare, OpenLoop, constant_times, poisson_times
from strategies.base import Knobs
from strategies.poisson import Poisson
from tests.support.servers import MockServerFactory

PEOPLE = load_personas()


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def _cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.mean(values)


def test_poisson_gaps_are_exponential_at_the_mean_rate() -> None:
    gaps = _gaps(poisson_times(5000, 40.0, seed=1))
    assert statistics.mean(gaps) == pytest.approx(1 / 40, rel=0.05)
    assert _cv(gaps) == pytest.approx(1.0, abs=0.05)  # an exponential's CV is 1
    assert poisson_times(50, 40.0, seed=1) == poisson_times(50, 40.0, seed=1)
    assert poisson_times(50, 40.0, seed=1) != poisson_times(50, 40.0, seed=2)


def test_constant_gaps_are_equal() -> None:
    gaps = _gaps(constant_times(100, 40.0))
    assert min(gaps) == pytest.approx(max(gaps)) == pytest.approx(0.025)


async def _cell(base_url: str, strategy: str, rate: float, count: int, cap: int) -> list[CallRecord]:
    rows: list[CallRecord] = []
    runner = Runner(
        run_id="arrivals",
        endpoint=Endpoint(base_url=base_url, api_key="test-key"),
        settings=RequestSettings(max_retries=0, timeout_s=30),
        emit=rows.append,
        client_factory=CLIENTS["aiohttp"].make,
        seed=7,
    )
    calls = tuple(calls_for_count(PEOPLE, count))
    await runner.run_cell(CellSpec(scenario="s", strategy=strategy, concurrency=cap, calls=calls, rate=rate))
    return rows


@pytest.mark.slow  # judged by the server's admission times, but a loaded machine can still delay sends
@pytest.mark.parametrize("strategy", ["poisson", "constant"])
async def test_the_server_sees_the_planned_arrivals(mock_server: MockServer, strategy: str) -> None:
    server = mock_server  # fixed 0.05 s, shared by the session
    rows = await _cell(server.base_url, strategy, 60.0, 150, cap=1000)
    assert len(rows) == 150
    assert all(r.status == "ok" for r in rows)
    planned = sorted(r.scheduled_s for r in rows)
    arrived = sorted(server.stats(detail=True).admitted_s or ())
    assert len(arrived) == 150
    rate = (len(arrived) - 1) / (arrived[-1] - arrived[0])
    assert rate == pytest.approx((len(planned) - 1) / planned[-1], rel=0.05)
    if strategy == "poisson":
        assert _cv(_gaps(arrived)) == pytest.approx(_cv(_gaps(planned)), abs=0.1)
        assert _cv(_gaps(planned)) == pytest.approx(1.0, abs=0.2)
    else:
        # Near-equal gaps: the median is the schedule's (a few stalls on a busy machine move the CV, not it).
        assert statistics.median(_gaps(arrived)) == pytest.approx(1 / 60.0, rel=0.2)
    assert all(r.start_s >= r.scheduled_s - 0.001 for r in rows)


async def test_the_in_flight_cap_holds_and_late_calls_keep_their_arrival_time(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(latency="fixed:0.05")
    rows = await _cell(server.base_url, "constant", 1000.0, 20, cap=2)
    assert len(rows) == 20
    assert server.stats().peak_in_flight == 2
    late = [r for r in rows if r.start_s - r.scheduled_s > 0.02]
    assert len(late) >= 15  # the cap bound: they left well after their arrival time


def _merged(strategy: str, rate: float, count: int, parts: int) -> list[float]:
    """The arrivals of ``parts`` senders, each given every parts-th call and its share of the schedule."""
    sender = STRATEGIES[strategy]()
    assert isinstance(sender, OpenLoop)
    merged: list[float] = []
    for index in range(parts):
        share = sender.share(index, parts, rate, seed=7)
        knobs = Knobs(concurrency=1, rate=share.rate, seed=share.seed)
        merged += [share.delay_s + at for at in sender.times(len(range(index, count, parts)), knobs)]
    return sorted(merged)


def test_poisson_shares_draw_their_own_streams_and_merge_at_the_asked_rate() -> None:
    shares = [Poisson().share(index, 4, 40.0, seed=7) for index in range(4)]
    assert len({share.seed for share in shares}) == 4  # one seeded stream each, not four copies of one
    assert Poisson().share(0, 1, 40.0, seed=7) == ArrivalShare(rate=40.0, seed=7)  # one sender: the local schedule
    gaps = _gaps(_merged("poisson", 40.0, 8000, 4))
    assert statistics.mean(gaps) == pytest.approx(1 / 40, rel=0.05)
    assert _cv(gaps) == pytest.approx(1.0, abs=0.05)


def test_constant_shares_interleave_into_the_one_even_schedule() -> None:
    assert _merged("constant", 40.0, 101, 3) == pytest.approx(constant_times(101, 40.0))
