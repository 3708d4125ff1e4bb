"""What each call costs the client process, counted rather than timed: system calls, hooks, header scans."""

from __future__ import annotations

import asyncio
import asyncio.trsock
import dataclasses
from collections.abc import Callable
from typing import Any

import aiohttp.tracing
import httpx2
import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.feedback import RateLimitFeedback, RateLimitInfo, any_rate_limit_header
from bench.clients.trace import CallTrace
from bench.core.calls import calls_for_count, load_personas
from bench.mock import MockServer

CALLS = calls_for_count(load_personas(), 48)


def counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Count the calls of ``owner.name`` (still calling through)."""
    seen = [0]
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return seen


async def run_calls(server: MockServer, client: str, concurrency: int, trace: bool = True) -> list[Outcome]:
    endpoint = Endpoint(base_url=server.base_url, api_key="test-key")
    driver = CLIENTS[client].make(endpoint, RequestSettings(max_retries=0, trace=trace), concurrency)
    window = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Outcome:
        async with window:
            return await driver.complete(CALLS[index])

    try:
        return list(await asyncio.gather(*(one(index) for index in range(len(CALLS)))))
    finally:
        await driver.aclose()


@pytest.mark.parametrize("client", ["openai", "httpx"])
def test_idle_connections_are_checked_without_asking_each_socket_its_peer(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    # httpcore2 asks every idle connection "is_readable" before each request; anyio's answer called
    # getpeername() each time (~C/2 system calls a request). Now: once when a connection opens.
    peers = counting(monkeypatch, asyncio.trsock.TransportSocket, "getpeername")
    outcomes = asyncio.run(run_calls(mock_server, client, concurrency=8))
    assert all(outcome.ok for outcome in outcomes)
    assert mock_server.stats().received == len(CALLS)
    assert peers[0] <= 2 * 8  # at most twice per connection (the socket, the TLS check), never per request


def test_the_aiohttp_driver_splits_time_without_aiohttp_tracing(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A TraceConfig makes aiohttp build a Trace and send ~5 signals per request (~35 µs of CPU).
    traces = counting(monkeypatch, aiohttp.tracing.Trace, "__init__")
    outcomes = asyncio.run(run_calls(mock_server, "aiohttp", concurrency=8))
    assert traces[0] == 0
    parts = [[part for _, part in outcome.trace.marks] for outcome in outcomes if outcome.trace is not None]
    assert len(parts) == len(CALLS)
    assert sum(marks == ["pool_wait", "connect", "ttfb", "body"] for marks in parts) <= 8  # a new connection
    assert sum(marks == ["pool_wait", "ttfb", "body"] for marks in parts) >= len(CALLS) - 8  # a reused one
    assert all(marks in (["pool_wait", "connect", "ttfb", "body"], ["pool_wait", "ttfb", "body"]) for marks in parts)


def test_the_httpcore_trace_marks_without_a_coroutine_of_its_own(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stale-connection probe already wraps httpcore2's trace hook: it calls the marks directly.
    awaited = counting(monkeypatch, CallTrace, "ahttpcore")
    outcomes = asyncio.run(run_calls(mock_server, "openai", concurrency=4))
    assert awaited[0] == 0
    assert all(outcome.trace is not None and len(outcome.trace.marks) >= 3 for outcome in outcomes)


def test_an_answer_without_rate_limit_headers_costs_no_header_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    headers = httpx2.Headers({"content-type": "application/json", "openai-processing-ms": "12"})
    gets = counting(monkeypatch, httpx2.Headers, "get")
    feedback = RateLimitFeedback(clock=lambda: 1.0)
    feedback.observe(200, headers)
    assert gets[0] == 0  # each httpx2 get scans every header
    assert feedback.latest is None
    assert feedback.responses == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"content-type": "application/json"}, id="none"),
        pytest.param({"x-ratelimit-remaining-requests": "4", "x-ratelimit-limit-requests": "9"}, id="openai"),
        pytest.param({"anthropic-ratelimit-tokens-reset": "2026-12-04T00:00:10Z"}, id="anthropic"),
        pytest.param({"retry-after-ms": "250"}, id="retry-after-ms"),
        pytest.param({"Retry-After": "3"}, id="case-blind"),
    ],
)
def test_the_quick_look_for_rate_limit_headers_finds_what_the_full_read_finds(headers: dict[str, str]) -> None:
    for wrapped in (httpx2.Headers(headers), aiohttp_headers(headers)):
        info = RateLimitInfo.from_headers(1.0, 200, wrapped)
        assert any_rate_limit_header(wrapped) == (info != RateLimitInfo(at=1.0, status=200))


def aiohttp_headers(headers: dict[str, str]) -> Any:
    from multidict import CIMultiDict, CIMultiDictProxy

    return CIMultiDictProxy(CIMultiDict(headers))


def test_a_429_still_asks_whether_it_answered_a_retry() -> None:
    feedback = RateLimitFeedback(clock=lambda: 1.0)
    asked: list[bool] = []

    def retry() -> bool:
        asked.append(True)
        return True

    feedback.observe(200, {}, retry)
    assert asked == []
    feedback.observe(429, {}, retry)
    assert asked == [True]
    assert (feedback.http_429s, feedback.fresh_429s) == (1, 0)


@pytest.mark.parametrize("client", ["openai", "aiohttp", "httpx"])
def test_a_call_copies_no_outcome_and_reads_no_rate_limits_that_are_not_there(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    # The time split's marks are set on the Outcome just built (``completed``), not on a copy (~5 µs a call);
    # an answer without rate-limit headers is counted without building a RateLimitInfo.
    copies = counting(monkeypatch, dataclasses, "replace")
    infos = counting(monkeypatch, RateLimitInfo, "from_headers")
    outcomes = asyncio.run(run_calls(mock_server, client, concurrency=4))
    assert all(outcome.ok and outcome.trace is not None for outcome in outcomes)
    assert (copies[0], infos[0]) == (0, 0)


def test_the_sdk_path_reads_its_reply_without_building_the_sdks_models(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # raw.parse() built a ChatCompletion of pydantic models (~8 % of the SDK path's CPU) for five fields.
    from openai._legacy_response import LegacyAPIResponse

    parses = counting(monkeypatch, LegacyAPIResponse, "parse")
    outcomes = asyncio.run(run_calls(mock_server, "openai", concurrency=4))
    assert parses[0] == 0
    assert all(outcome.ok and outcome.answer in ("Harris", "Trump") for outcome in outcomes)
    assert all(outcome.prompt_tokens and outcome.completion_tokens and outcome.served_model for outcome in outcomes)
