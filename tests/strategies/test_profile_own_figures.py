"""Built-in profiles at the figures they ship with, not scaled: a call must fit the buckets a client is told of.

``test_profile_rate_limits`` runs every profile at a scaled limit (40 requests a second) to keep a real
server's run short. Scaling hides a bucket shallower than one call: Groq's 6,000 TPM held for one second is
100 tokens, a persona call is ~250 (prompt plus ``max_tokens``), so every call waited for a full bucket and a
client paced exactly at the limit (``rate_limited --tpm 6000``), or one reading the tokens headers
(``adaptive``: thousands of tokens "remaining"), was refused about once a call. Here the mock's own
``RateLimiter`` runs at Groq's shipped figures in virtual time (``tests/support/virtual_time``), with Groq's
headers (requests headers stating the day): minutes of pacing in about a second.
"""

from __future__ import annotations

import functools

import pytest

from bench.clients.base import RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.mock.limits import RateLimiter
from bench.mock.profile import builtin_names, load_profile
from strategies import Knobs
from strategies.rate_limited import call_tokens
from tests.support.virtual_time import MAX_TOKENS, run_strategy

CALLS = 120  # ~5 virtual minutes at Groq's 6,000 TPM


@functools.cache
def largest_call_tokens() -> int:
    """The tokens a default persona call is charged at admission (prompt and ``max_tokens``), the largest."""
    return max(call_tokens(call, RequestSettings().max_tokens) for call in calls_for_count(load_personas(), 500))


@pytest.mark.parametrize("name", [n for n in builtin_names() if load_profile(n).tpm])
def test_a_profiles_tokens_bucket_holds_a_whole_call(name: str) -> None:
    profile = load_profile(name)
    limiter = RateLimiter(
        rpm=profile.rpm,
        tpm=profile.tpm,
        burst_seconds=profile.burst_seconds or 1.0,
        tokens_burst_seconds=profile.tokens_burst_seconds,
    )
    assert limiter.tokens is not None
    assert limiter.tokens.capacity >= largest_call_tokens(), f"{name}: a call never fits its tokens bucket"


@pytest.mark.parametrize("strategy", ["rate_limited", "adaptive"])
def test_groq_at_its_own_figures_refuses_no_call_a_client_could_avoid(strategy: str) -> None:
    groq = load_profile("groq")
    assert groq.rpm
    assert groq.tpm
    assert groq.rpd
    workload = calls_for_count(load_personas(), CALLS)
    knobs = Knobs(concurrency=50, max_tokens=MAX_TOKENS, tpm=groq.tpm if strategy == "rate_limited" else None)
    server, sender = run_strategy(
        strategy,
        workload,
        knobs,
        rpm=groq.rpm,
        tpm=groq.tpm,
        burst_seconds=groq.burst_seconds or 1.0,
        tokens_burst_seconds=groq.tokens_burst_seconds,
        daily=(groq.rpd, groq.rpd),
    )
    assert len(sender.records) == CALLS
    assert all(r.status == "ok" for r in sender.records)
    times = [when for when, _ in server.admitted]
    tokens = sum(charged for _, charged in server.admitted[1:])
    share = 60.0 * tokens / (times[-1] - times[0]) / groq.tpm
    assert share >= 0.95
    # Groq states its requests per minute in no header (its requests headers state the day): adaptive may be
    # refused once finding them; pacing exactly at the stated tokens limit must be refused nothing.
    assert server.http_429s <= (1 if strategy == "adaptive" else 0)
