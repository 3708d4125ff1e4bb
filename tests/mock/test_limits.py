from __future__ import annotations

import pytest

from bench.clients.feedback import parse_duration as parse_reset
from bench.mock.limits import RateLimiter, TokenBucket, format_duration


class FakeClock:
    """A clock the test moves by hand (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(-3, "0s", id="negative"),
        pytest.param(0.0004, "0s", id="below-a-millisecond"),
        pytest.param(0.012, "12ms", id="ms"),
        pytest.param(0.999, "999ms", id="just-under-a-second"),
        pytest.param(1, "1s", id="one-second"),
        pytest.param(1.5, "1.5s", id="fractional"),
        pytest.param(8.64, "8.64s", id="two-decimals"),
        pytest.param(59.999, "59.999s", id="three-decimals"),
        pytest.param(60, "1m0s", id="one-minute"),
        pytest.param(360, "6m0s", id="six-minutes"),
        pytest.param(179.56, "2m59.56s", id="minutes-and-fraction"),
        pytest.param(3723.5, "1h2m3.5s", id="hours"),
        pytest.param(3600, "1h0m0s", id="one-hour"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("per_minute", "burst", "capacity"),
    [
        pytest.param(60, 1.0, 1.0, id="60rpm-is-one-a-second"),
        pytest.param(30, 1.0, 1.0, id="at-least-one"),
        pytest.param(600, 2.0, 20.0, id="two-seconds-of-600rpm"),
        pytest.param(3000, 0.5, 25.0, id="half-a-second"),
    ],
)
def test_bucket_starts_full_with_burst_seconds_of_capacity(per_minute: int, burst: float, capacity: float) -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=per_minute, burst_seconds=burst, clock=clock)
    assert bucket.capacity == capacity
    admitted = 0
    while bucket.wait_for(1) == 0.0:
        bucket.take(1)
        admitted += 1
    assert admitted == int(capacity)


def test_bucket_wait_is_exact_and_a_rejection_consumes_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=60, clock=clock)
    assert bucket.wait_for(1) == 0.0
    bucket.take(1)
    assert bucket.wait_for(1) == pytest.approx(1.0)
    clock.advance(0.25)
    for _ in range(5):  # asking again and again costs nothing
        assert bucket.wait_for(1) == pytest.approx(0.75)
    clock.advance(0.75)
    assert bucket.wait_for(1) == 0.0


def test_bucket_holds_a_client_to_the_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=600, burst_seconds=1.0, clock=clock)
    admitted = 0
    while clock.now < 1060.0:  # a greedy client for one minute, retrying exactly when told
        wait = bucket.wait_for(1)
        if wait:
            clock.advance(wait)
        else:
            bucket.take(1)
            admitted += 1
    assert admitted in (609, 610, 611)  # 10 in the initial burst, then 10 a second


def test_bucket_headers_count_down_and_reset() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=120, burst_seconds=2.0, clock=clock)
    assert (bucket.remaining(), bucket.reset_after()) == (120, 0.0)
    bucket.take(1)
    bucket.take(1)
    assert bucket.remaining() == 118
    assert bucket.reset_after() == pytest.approx(1.0)
    clock.advance(10)
    assert (bucket.remaining(), bucket.reset_after()) == (120, 0.0)


def test_oversized_request_is_admitted_when_full_and_leaves_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=6000, clock=clock)  # capacity 100 tokens
    assert bucket.wait_for(250) == 0.0
    bucket.take(250)
    assert bucket.wait_for(250) == pytest.approx(2.5)  # back to full (100) from -150 at 100/s


def test_limiter_requests_rejection_has_openai_fields() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, clock=clock)
    assert limiter.admit(100, "gpt-4o-mini") is None
    clock.advance(0.4)
    rejection = limiter.admit(100, "gpt-4o-mini")
    assert rejection is not None
    assert rejection.kind == "requests"
    assert rejection.wait_s == pytest.approx(0.6)
    assert rejection.message == (
        "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): "
        "Limit 60, Used 1, Requested 1. Please try again in 600ms. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    assert rejection.headers() == {"retry-after-ms": "600", "retry-after": "1"}
    assert limiter.headers() == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "600ms",
    }


def test_limiter_tokens_rejection_charges_neither_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=6000, tpm=6000, clock=clock)  # 100 requests, 100 tokens
    assert limiter.admit(100, "m") is None
    rejection = limiter.admit(50, "m")
    assert rejection is not None
    assert rejection.kind == "tokens"
    assert rejection.wait_s == pytest.approx(0.5)
    assert "on tokens per min (TPM): Limit 6000, Used 100, Requested 50." in rejection.message
    assert limiter.requests is not None
    assert limiter.requests.remaining() == 5999  # the rejected request was not charged
    headers = limiter.headers()
    assert headers["x-ratelimit-remaining-tokens"] == "5900"
    assert headers["x-ratelimit-reset-tokens"] == "1s"


def test_limiter_refuses_a_request_larger_than_the_minute() -> None:
    limiter = RateLimiter(rpm=None, tpm=1000, clock=FakeClock())
    rejection = limiter.admit(1500, "gpt-4o")
    assert rejection is not None
    assert rejection.kind == "tokens"
    assert rejection.message.startswith("Request too large for gpt-4o in organization org-mock on tokens per min")


def test_limiter_refill_restores_a_full_bucket() -> None:
    limiter = RateLimiter(rpm=60, tpm=None, clock=FakeClock())
    assert limiter.admit(1, "m") is None
    assert limiter.admit(1, "m") is not None
    limiter.refill()
    assert limiter.admit(1, "m") is None


def test_limiter_without_limits_is_disabled() -> None:
    limiter = RateLimiter(rpm=None, tpm=None)
    assert not limiter.enabled
    assert limiter.headers() == {}
    assert all(limiter.admit(10**9, "m") is None for _ in range(100))


def test_a_day_budget_is_stated_in_the_requests_headers_and_refuses_once_spent() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=100_000, clock=clock, rpd=10_000, rpd_used=9_998)
    assert limiter.admit(10, "m") is None
    headers = limiter.headers()
    assert headers["x-ratelimit-limit-requests"] == "10000"  # a day's limit, not a minute's
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert parse_reset(headers["x-ratelimit-reset-requests"]) == pytest.approx(9_999 * 8.64, rel=1e-3)
    assert headers["x-ratelimit-limit-tokens"] == "100000"  # the tokens headers stay per minute
    assert limiter.admit(10, "m") is None
    refused = limiter.admit(10, "m")
    assert refused is not None
    assert refused.kind == "requests"
    assert refused.wait_s == pytest.approx(8.64)  # one request refills in a day / 10,000
    limiter.refill()  # back to how the day started
    assert limiter.headers()["x-ratelimit-remaining-requests"] == "2"
