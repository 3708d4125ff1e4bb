"""adaptive learns a limit it is not told: headers parsed, the controller, whole runs in virtual time."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
import respx

from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.feedback import RateLimitFeedback, RateLimitInfo, parse_duration
from bench.clients.raw import HttpxDriver
from bench.clients.sdk import OpenAIAsyncClient
from bench.core.calls import Call, build_calls, load_personas
from bench.engine.runner import CellSender, CellSpec
from strategies import Knobs
from strategies.control import BLIND_INCREASE_PER_S, DECREASE, SETPOINT_S, Controller
from tests.support.fakes import completion_body
from tests.support.virtual_time import MAX_TOKENS, LimitedEndpoint, calls, run_strategy

URL = "http://fake.test/v1/chat/completions"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("0s", 0.0, id="zero"),
        pytest.param("20ms", 0.02, id="ms"),
        pytest.param("1.5s", 1.5, id="s"),
        pytest.param("6m0s", 360.0, id="m-s"),
        pytest.param("1h2m3.5s", 3723.5, id="h-m-s"),
        pytest.param("0.25", 0.25, id="bare"),
        pytest.param("soon", None, id="words"),
        pytest.param("5x", None, id="unit"),
        pytest.param("-1s", None, id="negative"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_info_reads_openai_headers() -> None:
    headers = {
        "x-ratelimit-limit-requests": "1800",
        "x-ratelimit-remaining-requests": "1790",
        "x-ratelimit-reset-requests": "333ms",
        "x-ratelimit-limit-tokens": "400000",
        "x-ratelimit-remaining-tokens": "398000",
        "x-ratelimit-reset-tokens": "300ms",
        "retry-after-ms": "40",
        "retry-after": "1",
    }
    info = RateLimitInfo.from_headers(1.0, 429, headers)
    assert (info.limit_requests, info.remaining_requests, info.limit_tokens) == (1800, 1790, 400_000)
    assert info.debt_s == pytest.approx(0.333)
    assert info.retry_after_s == pytest.approx(0.04)
    assert RateLimitInfo.from_headers(1.0, 429, {"retry-after": "2"}).retry_after_s == 2.0
    assert not RateLimitInfo.from_headers(1.0, 200, {}).informative


@pytest.mark.parametrize(
    "make_client",
    [pytest.param(OpenAIAsyncClient, id="sdk-hook"), pytest.param(HttpxDriver, id="raw-driver")],
)
async def test_the_clients_hook_keeps_every_answers_headers(
    httpx2_mock: respx.Router, make_client: type[OpenAIAsyncClient] | type[HttpxDriver]
) -> None:
    limited = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "retry-after-ms": "5",
    }
    body = {
        "error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    ok = completion_body(json.dumps({"vote": "Harris", "reason": "r"}))
    httpx2_mock.post(URL).mock(
        side_effect=[
            httpx.Response(429, json=body, headers=limited),
            httpx.Response(429, json=body, headers=limited),
            httpx.Response(
                200,
                json=ok,
                headers={**limited, "x-ratelimit-remaining-requests": "58", "x-ratelimit-reset-requests": "2s"},
            ),
        ]
    )
    client = make_client(Endpoint(base_url="http://fake.test/v1", api_key="k"), RequestSettings(), 2)
    outcome = await client.complete(build_calls(load_personas(limit=1))[0])
    await client.aclose()
    feedback = client.rate_limits
    assert outcome.ok
    assert outcome.attempts == 3
    assert outcome.http_429s == 2
    assert (feedback.responses, feedback.http_429s, feedback.fresh_429s) == (3, 2, 1)  # one echo: a retry's
    assert feedback.last_429 is not None
    assert feedback.last_429.retry_after_s == pytest.approx(0.005)
    assert feedback.latest is not None
    assert feedback.latest.status == 200
    assert (feedback.latest.remaining_requests, feedback.latest.debt_s) == (58, 2.0)
    assert feedback.latest.limit_requests == 60


def _feedback(status: int, retry: bool = False, **headers: str) -> RateLimitFeedback:
    feedback = RateLimitFeedback(clock=lambda: 0.0)
    feedback.observe(status, {f"x-ratelimit-{k.replace('_', '-')}": v for k, v in headers.items()}, retry)
    return feedback


def test_controller_starts_at_the_limit_the_server_states() -> None:
    control = Controller(tokens_per_call=200)
    stated = _feedback(200, limit_requests="1800", remaining_requests="1799", reset_requests="33ms")
    control.update(0.0, stated)
    assert control.ceiling == pytest.approx(30.0)
    assert control.base == pytest.approx(30.0)
    assert not control.slow_start
    tokens = Controller(tokens_per_call=200)
    tokens.update(0.0, _feedback(200, limit_tokens="120000", remaining_tokens="119800", reset_tokens="10ms"))
    assert tokens.ceiling == pytest.approx(10.0)  # 2,000 tokens a second over 200 a call


def test_controller_cuts_once_for_one_overshoot_and_not_for_a_retrys_429() -> None:
    control = Controller(tokens_per_call=200, base=20.0, rate=20.0, slow_start=False)
    feedback = RateLimitFeedback(clock=lambda: 0.0)
    feedback.observe(429, {"retry-after-ms": "250"})
    control.update(10.0, feedback)
    assert control.base == pytest.approx(20.0 * DECREASE)
    assert control.pause_until == pytest.approx(10.25)
    feedback.observe(429, {"retry-after-ms": "250"})
    control.update(10.01, feedback)  # the same overshoot, answered a moment later
    assert control.base == pytest.approx(20.0 * DECREASE, rel=3e-3)
    feedback.observe(429, {"retry-after-ms": "250"}, True)
    control.update(11.0, feedback)  # a retry refused again is an echo, not news
    # No cut: only the growth of a second (no headers: the quick growth of a rate that has not measured the refill).
    grown = (1 + BLIND_INCREASE_PER_S * 0.01) * (1 + BLIND_INCREASE_PER_S * 0.99)
    assert control.base == pytest.approx(20.0 * DECREASE * grown, rel=1e-3)
    assert control.pause_until == pytest.approx(11.25)


def test_controller_does_not_wind_up_while_the_window_holds_it_back() -> None:
    control = Controller(tokens_per_call=200)
    for step in range(100):
        control.window_limited = True
        control.update(step * 0.1, None)
    assert control.base == pytest.approx(1.0)


LONG_S = 120  # simulated seconds: long enough for the average to mean something
WIDE = Knobs(concurrency=200, max_tokens=MAX_TOKENS)  # the window never binds: the rate does


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "latency_s", "least", "most_429"),
    [
        pytest.param("openai", 0.05, 0.98, 0.0, id="openai-50ms"),
        pytest.param("openai", 2.6, 0.98, 0.0, id="openai-2.6s"),
        pytest.param("no-limit", 1.0, 0.97, 0.01, id="remaining-and-reset"),
        pytest.param("reset-only", 1.0, 0.95, 0.01, id="reset-only"),
        pytest.param("none", 0.05, 0.95, 0.01, id="429s-only-50ms"),
        pytest.param("none", 1.0, 0.95, 0.01, id="429s-only-1s"),
        # Not even retry-after (Google's OpenAI-compatible endpoint): the refill measured between 429s.
        pytest.param("blind", 0.05, 0.95, 0.01, id="nothing-50ms"),
        pytest.param("blind", 1.0, 0.95, 0.01, id="nothing-1s"),
        # A client without the header hook (the raw drivers) learns only from finished rows: weaker.
        pytest.param("no-hook", 1.0, 0.85, 0.05, id="rows-only"),
    ],
)
def test_learns_an_untold_limit(headers: str, latency_s: float, least: float, most_429: float) -> None:
    rpm, warm_up = 1800, 15.0
    server, sender = run_strategy(
        "adaptive", calls(rpm // 60 * LONG_S), WIDE, rpm=rpm, latency_s=latency_s, headers=headers
    )
    assert len(sender.records) == rpm // 60 * LONG_S
    admitted, _ = server.admitted_between(warm_up, LONG_S - 5)
    utilisation = admitted / ((LONG_S - 5 - warm_up) * rpm / 60)
    assert least <= utilisation <= 1.01
    assert server.http_429s <= most_429 * server.attempts


def test_with_no_headers_at_all_the_refill_measured_between_429s_ends_the_429s() -> None:
    """Google's endpoint states nothing: two 429s 60 calls apart say the refill; 97 % of it, and no more 429s."""
    rpm = 1200
    server, sender = run_strategy("adaptive", calls(rpm // 60 * 40), WIDE, rpm=rpm, headers="blind")
    assert sender.learned_rpm is not None
    assert 0.94 * rpm <= sender.learned_rpm <= 0.99 * rpm
    assert _share_of_limit(server, rpm, 10.0, 38.0) >= 0.95
    assert server.http_429s <= 12
    assert max(server.refused_at) - server.admitted[0][0] < 10.0  # all while learning, in the first seconds


@pytest.mark.slow
def test_learns_an_untold_token_limit() -> None:
    tpm = 400_000
    server, sender = run_strategy("adaptive", calls(2400), WIDE, tpm=tpm)
    _, tokens = server.admitted_between(15.0, 60.0)
    assert 0.97 <= tokens / (45 * tpm / 60) <= 1.01
    assert server.http_429s == 0


def test_shares_the_limit_with_traffic_it_cannot_see() -> None:
    """Another client already uses a third of the limit: the debt, not the stated limit, decides."""
    rpm = 1800
    server, sender = run_strategy("adaptive", calls(1500), WIDE, rpm=rpm, others_rps=10.0)
    admitted, _ = server.admitted_between(15.0, 60.0)
    assert 0.95 <= admitted / (45 * 20) <= 1.01  # 20 a second are left for us
    assert server.http_429s <= 0.01 * server.attempts


def test_a_window_too_small_for_the_limit_caps_the_calls_in_flight() -> None:
    narrow = Knobs(concurrency=4, max_tokens=MAX_TOKENS)
    server, sender = run_strategy("adaptive", calls(300), narrow, rpm=1800, latency_s=0.5)
    assert server.peak_in_flight == 4
    assert server.http_429s == 0
    assert len(sender.records) == 300


async def test_the_runner_hands_strategies_the_clients_feedback() -> None:
    spec = CellSpec(scenario="unit", strategy="adaptive", concurrency=1, calls=())
    client = OpenAIAsyncClient(Endpoint(base_url="http://fake.test/v1", api_key="k"), RequestSettings(), 1)
    with_hook = CellSender(run_id="u", spec=spec, emit=lambda r: None, stop=threading.Event(), client=client)
    assert with_hook.rate_limits is client.rate_limits
    await client.aclose()
    raw = HttpxDriver(Endpoint(base_url="http://fake.test/v1", api_key="k"), RequestSettings(), 1)
    via_raw = CellSender(run_id="u", spec=spec, emit=lambda r: None, stop=threading.Event(), client=raw)
    assert via_raw.rate_limits is raw.rate_limits  # the raw drivers keep the headers too
    await raw.aclose()

    class NoHook:
        async def complete(self, call: Call) -> Outcome:
            raise NotImplementedError

        async def aclose(self) -> None:
            return None

    without = CellSender(run_id="u", spec=spec, emit=lambda r: None, stop=threading.Event(), client=NoHook())
    assert without.rate_limits is None  # adaptive then learns from finished rows alone


def _share_of_limit(server: LimitedEndpoint, rpm: int, start: float, end: float) -> float:
    admitted, _ = server.admitted_between(start, end)
    return admitted / ((end - start) * rpm / 60)


def test_random_429s_while_answers_show_capacity_only_pause_it() -> None:
    """20 % of attempts refused at random, with no limit headers: not evidence that the rate is too high."""
    rpm = 600
    server, sender = run_strategy("adaptive", calls(rpm // 60 * 60), WIDE, rpm=rpm, noise=0.2)
    assert server.noise_429s > 0.15 * server.attempts  # the noise was there
    assert _share_of_limit(server, rpm, 10.0, 55.0) >= 0.9
    assert sender.learned_rpm == pytest.approx(rpm)


def test_a_minute_sized_bucket_half_spent_by_others_is_held_not_drained() -> None:
    """A bucket of a minute of requests, 30 s of it used at the start: a debt of 30 s is no reason to crawl."""
    rpm = 600
    server, sender = run_strategy("adaptive", calls(600), WIDE, rpm=rpm, burst_seconds=60, used_s=30)
    assert _share_of_limit(server, rpm, 5.0, 55.0) >= 0.9
    assert server.http_429s == 0


def test_a_day_budget_with_plenty_left_paces_nothing() -> None:
    """Requests headers state a day (10,000, 9,000 left, reset in hours); the tokens limit is the pace."""
    tpm = 400_000
    server, sender = run_strategy("adaptive", calls(1200), WIDE, tpm=tpm, daily=(10_000, 9_000))
    _, tokens = server.admitted_between(10.0, 40.0)
    assert tokens / (30 * tpm / 60) >= 0.9
    assert server.http_429s == 0


def test_a_day_budget_running_low_paces_to_what_is_left() -> None:
    """Under a tenth of the day left: it paces to what remains until the reset, not to the tokens limit."""
    server, sender = run_strategy("adaptive", calls(20), WIDE, tpm=400_000, daily=(10_000, 500))
    assert len(sender.records) == 20
    admitted, _ = server.admitted_between(0.0, 60.0)
    assert admitted <= 10  # the tokens limit alone would allow hundreds a minute


def test_an_absurd_retry_after_does_not_pause_adaptive_at_all() -> None:
    from bench.clients.feedback import RateLimitFeedback

    feedback = RateLimitFeedback(clock=lambda: 0.0)
    feedback.observe(429, {"retry-after": "999999", "x-ratelimit-reset-requests": "99999999h"})
    control = Controller(tokens_per_call=200)
    before = control.pause_until
    control.update(5.0, feedback)
    # The call that got it ended at once ("not waited"); a wave of them paused the run 120 s each before.
    assert control.pause_until == before
    assert control.debt_s is None  # a reset of 11,400 years is no per-minute debt


def test_headers_that_contradict_themselves_do_not_throttle_adaptive() -> None:
    from bench.clients.feedback import RateLimitFeedback

    feedback = RateLimitFeedback(clock=lambda: 0.0)
    nonsense = {"x-ratelimit-limit-requests": "0", "x-ratelimit-remaining-requests": "5"}
    for _ in range(20):
        feedback.observe(200, nonsense)
    control = Controller(tokens_per_call=200)
    calm = Controller(tokens_per_call=200)
    for step in range(1, 11):
        control.update(float(step), feedback)
        calm.update(float(step), None)
    assert control.rate == calm.rate  # a limit of 0 on a 200 answer says nothing: was 3 rpm


@pytest.mark.parametrize(
    ("limit", "remaining", "reset_s", "steered"),
    [
        pytest.param(14_400, 14_399, 6.0, False, id="a day's budget after one request (Groq's requests headers)"),
        pytest.param(14_400, 14_391, 54.0, False, id="a day's budget after nine, still under a minute"),
        pytest.param(2_400, 2_390, 0.25, True, id="a minute's bucket"),
        pytest.param(2_400, 2_390, 2.0, True, id="a minute's bucket, its reset rounded up to whole seconds"),
        pytest.param(10_000, 9_999, 1.0, True, id="one request of a large minute's limit, rounded up to 1 s"),
    ],
)
def test_a_days_budget_is_not_steered_as_a_minutes_bucket(
    limit: int, remaining: int, reset_s: float, steered: bool
) -> None:
    # A day's budget read as a minute's bucket once raised the setpoint to its 54 s reset: adaptive then
    # ran at twice the tokens limit until refused (Groq, one 429 at the start of every run).
    control = Controller(tokens_per_call=100.0)
    info = RateLimitInfo(
        at=0.0,
        status=200,
        limit_requests=limit,
        remaining_requests=remaining,
        reset_requests_s=reset_s,
        limit_tokens=600_000,
        remaining_tokens=599_000,
        reset_tokens_s=0.1,
    )
    control._on_limits(info)
    assert (control.debt_s == reset_s) is steered
    assert control.setpoint_s <= SETPOINT_S
