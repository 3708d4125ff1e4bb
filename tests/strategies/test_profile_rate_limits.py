"""``bench run`` with ``adaptive`` and ``rate_limited`` against the mock speaking each provider's dialect.

Every built-in profile with a request limit, scaled to RPM a minute (BLIND_RPM where nothing is stated; an
override), a fixed 50 ms latency and 150 calls (250 where nothing is stated), run in this process. Judged by
what the mock counted (``/stats``: 429s sent, admission times), never by the client's clock: each strategy must send no
429 it could have avoided and be admitted at >= 95 % of the limit. Groq's headers state requests per day,
not per minute, so its run binds on tokens per minute (what its headers do state). Google's endpoint states
nothing (no rate-limit headers, no retry-after): ``adaptive`` can only find the limit by being refused, then
measures the refill between two 429s (``strategies/control.py``): its 429s are the probing it needs (a
few, at the start), and the 95 % is judged on the run's second half, after the learning (over the whole
12 s run it reaches about 90 %). Groq's requests headers state a day's budget, whose reset is under a minute
after its first requests (6 s after one of 14,400): ``adaptive`` tells it from a minute's bucket by the window its
refill implies, and is refused nothing there either. At the profiles' own figures (not scaled):
``test_profile_own_figures``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.clients.base import RequestSettings
from bench.core.calls import calls_for_count, load_personas
from bench.mock import MockConfig, MockServer
from bench.mock.stats import ServerStats
from strategies.rate_limited import call_tokens
from tests.support.cli_runs import invoke_bench

pytestmark = pytest.mark.slow

RPM = 2400  # 40 a second: ~6 s at the limit
BLIND_RPM = 1200  # 20 a second for the endpoint that states nothing: its learning needs 429s seconds apart
CALLS = 150  # ~4 s at the limit
BLIND_CALLS = (
    250  # the endpoint that states nothing: learning needs two 429s 2 s and 60 calls apart, then a half to judge
)
LATENCY = "fixed:0.05"
HEADROOM_TPM = 100_000_000  # keeps a profile's tokens limit out of the way when requests are judged
PROBING_429_SHARE = 0.03  # adaptive without any header: the refusals it may spend finding the limit

LIMITED = ("openai-tier1", "openai-tier5", "azure-openai", "anthropic-openai-compat", "google-openai-compat", "groq")
BLIND = {"google-openai-compat"}  # no rate-limit headers at all
TOKENS_BOUND = {"groq"}


def mean_call_tokens(count: int = CALLS) -> float:
    calls = calls_for_count(load_personas(), count)
    return sum(call_tokens(call, RequestSettings().max_tokens) for call in calls) / count


def rpm_of(profile: str) -> int:
    return BLIND_RPM if profile in BLIND else RPM


def calls_of(profile: str) -> int:
    return BLIND_CALLS if profile in BLIND else CALLS


def admitted_share(
    stats: ServerStats, *, rpm: int, tpm: int | None, calls: int = CALLS, second_half: bool = False
) -> float:
    """What the mock admitted a minute, over the limit, from its own admission times (of the second half
    of the calls only, with ``second_half``: after a blind strategy's learning)."""
    times = stats.admitted_s or ()
    assert len(times) == calls
    if second_half:
        assert tpm is None
        times = times[calls // 2 :]
    span = times[-1] - times[0]
    if tpm is None:
        return 60.0 * (len(times) - 1) / span / rpm
    tokens = stats.admitted_tokens * (len(times) - 1) / len(times)
    return 60.0 * tokens / span / tpm


@pytest.mark.parametrize("profile", LIMITED)
@pytest.mark.parametrize("strategy", ["rate_limited", "adaptive"])
def test_a_strategy_holds_a_profiles_limit_without_avoidable_429s(tmp_path: Path, profile: str, strategy: str) -> None:
    limit, calls = rpm_of(profile), calls_of(profile)
    tpm = round(limit * mean_call_tokens(calls)) if profile in TOKENS_BOUND else None
    rpm, mock_tpm = (10 * limit, tpm) if tpm else (limit, HEADROOM_TPM)
    # Scaled, Groq's minute of tokens would hold the whole run: the scaled bucket holds a second's (~40 calls).
    config = MockConfig(latency=LATENCY, profile=profile, rpm=rpm, tpm=mock_tpm, tokens_burst_seconds=1.0)
    with MockServer(config) as server:
        pace = ["--tpm", str(tpm)] if tpm else ["--rpm", str(limit)]
        args = ["run", "--strategy", strategy, "--concurrency", "50", "--calls", str(calls)]
        args += ["--endpoint", server.base_url, "--out", str(tmp_path / "run"), "--no-plots", "-q"]
        done = invoke_bench(args + (pace if strategy == "rate_limited" else []))  # in this process: no start-up
        assert done.returncode == 0, done.stderr[-2000:]
        stats = server.stats(detail=True)
    share = admitted_share(stats, rpm=limit, tpm=tpm, calls=calls)
    print(f"{profile} {strategy}: {100 * share:.1f} % of the limit, {stats.http_429} 429s of {stats.received}")
    if strategy == "adaptive" and profile in BLIND:
        assert admitted_share(stats, rpm=limit, tpm=None, calls=calls, second_half=True) >= 0.95
        assert stats.http_429 <= PROBING_429_SHARE * stats.received
        return
    assert share >= 0.95
    assert stats.http_429 == 0
