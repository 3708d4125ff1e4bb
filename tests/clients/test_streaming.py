"""Streamed calls against the real mock server: TTFT, ITL and output tokens as the server timed them."""

from __future__ import annotations

import asyncio
import functools
import statistics
from collections.abc import Iterator

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.bounds import PayloadMeter
from bench.clients.streaming import SseReader, StreamTiming
from bench.core.calls import calls_for_count, load_personas
from bench.mock import MockConfig, MockServer
from tests.support.servers import MockServerFactory
from tests.support.steady import remeasured

PEOPLE = load_personas()
TTFT, ITL, TOKENS = 0.05, 0.05, 8
SLACK_S = 0.1 * (TOKENS - 1) * ITL  # decode's 10 %: a first token this late or less still meets its bound


@pytest.fixture(scope="module")
def timed_server() -> Iterator[MockServer]:
    """One mock with a known TTFT, ITL and token count for every client (started once: ~2 s)."""
    config = MockConfig(latency="zero", ttft=f"fixed:{TTFT}", itl=f"fixed:{ITL}", output_tokens=f"fixed:{TOKENS}")
    with MockServer(config) as server:
        yield server


def _on_time(outcome: Outcome) -> bool:
    return outcome.ttft_s is not None and outcome.ttft_s <= TTFT + SLACK_S


async def _outcomes(base_url: str, client: str, count: int, *, together: bool = False) -> list[Outcome]:
    endpoint = Endpoint(base_url=base_url, api_key="test-key")
    settings = RequestSettings(stream=True, timeout_s=30)
    driver = CLIENTS[client].make(endpoint, settings, count)
    calls = calls_for_count(PEOPLE, count)
    try:
        if together:
            return list(await asyncio.gather(*(driver.complete(c) for c in calls)))
        # One at a time: no client-side queueing in TTFT; a call whose first token a stall delayed is made again.
        return [await remeasured(functools.partial(driver.complete, c), _on_time) for c in calls]
    finally:
        await driver.aclose()


@pytest.mark.parametrize("client", list(CLIENTS))
def test_streamed_rows_carry_the_servers_ttft_itl_and_token_count(timed_server: MockServer, client: str) -> None:
    seen = asyncio.run(_outcomes(timed_server.base_url, client, 6))
    assert all(o.ok for o in seen), {o.error for o in seen}
    assert [o.output_tokens for o in seen] == [TOKENS] * 6
    # Bounds the server enforces, so a busy machine cannot break them: the first token leaves after
    # TTFT, each further one ITL after the one before; a clock that read TTFT at the last chunk, or
    # ITL over the role chunk, would fail them.
    for o in seen:
        assert o.ttft_s is not None
        assert o.decode_s is not None
        assert o.ttft_s >= TTFT
        assert o.decode_s >= (TOKENS - 1) * ITL * 0.9
    assert statistics.median(o.itl_s or 0.0 for o in seen) >= ITL * 0.9
    assert all(o.answer for o in seen)  # the padding after the JSON answer keeps it parseable


def test_ttft_grows_with_the_servers_queue(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(
        latency="zero", ttft="fixed:0.05", itl="fixed:0.01", output_tokens="fixed:5", max_concurrency=2
    )
    seen = asyncio.run(_outcomes(server.base_url, "aiohttp", 6, together=True))
    ttfts = sorted(o.ttft_s or 0.0 for o in seen)
    # Two slots: the third pair waits for two full answers (2 × (0.05 + 4 × 0.01)) before its first token.
    assert ttfts[0] >= 0.05
    assert ttfts[-1] - ttfts[0] >= 2 * 0.09 - 0.01


def test_sse_lines_fold_into_one_completion_with_timing() -> None:
    reader = SseReader()
    lines = [
        'data: {"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
        ": a comment",
        'data: {"model":"m","choices":[{"index":0,"delta":{"content":"{\\"vote\\""}}]}',
        'data: {"model":"m","choices":[{"index":0,"delta":{"content":": \\"Harris\\"}"}}]}',
        'data: {"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
        'data: {"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}',
        "data: [DONE]",
    ]
    for at, line in enumerate(lines):
        reader.feed(line, float(at))
        reader.feed("", float(at))  # the blank line that ends each event
    assert reader.done
    assert reader.finish_reason == "stop"
    assert b'{\\"vote\\": \\"Harris\\"}' in reader.body()
    assert reader.timing(start=0.5) == StreamTiming(ttft_s=1.5, itl_s=1.0, decode_s=1.0, output_tokens=7)


def test_without_a_usage_chunk_the_content_chunks_are_counted() -> None:
    assert StreamTiming.of(0.0, [0.1, 0.2, 0.4], None).output_tokens == 3
    assert StreamTiming.of(0.0, [], None).ttft_s is None


@pytest.mark.parametrize("size", [1, 3, 7, 1000], ids=lambda n: f"chunks-of-{n}")
def test_the_payload_meter_counts_data_values_whatever_the_chunking(size: int) -> None:
    stream = b": ping\n\ndata: abc\n\nevent: x\ndata:de\r\n\ndata: tail-not-ended"
    meter = PayloadMeter(10**6)
    for at in range(0, len(stream), size):
        meter.over(stream[at : at + size])
    # " abc" (4) + "de\r" (3) counted; ": ping", "event: x" and the blank lines not; the open line whole
    assert meter.seen + meter.line == 4 + 3 + len("data: tail-not-ended")
