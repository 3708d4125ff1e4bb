"""The mock's Files and Batches APIs through the openai SDK: same answers as chat, partial on cancel."""

from __future__ import annotations

import asyncio
import json

import openai

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.batch import OpenAIBatchClient, batch_line, result_outcomes
from bench.clients.sdk import OpenAIAsyncClient
from bench.core.calls import build_calls, load_personas
from tests.support.servers import MockServerFactory

SETTINGS = RequestSettings(max_retries=0, timeout_s=10)


async def _wait(client: OpenAIBatchClient, batch_id: str) -> str:
    for _ in range(200):
        info = await client.retrieve(batch_id)
        if info.finished:
            return info.status
        await asyncio.sleep(0.05)
    raise AssertionError("the batch never finished")


async def test_a_batch_answers_each_line_as_chat_does_and_sends_no_chat(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", batch_delay="fixed:0.3", malformed_rate=0.2, error_rate=0.1)
    endpoint = Endpoint(base_url=server.base_url, api_key="k")
    calls = build_calls(load_personas(limit=30))
    client = OpenAIBatchClient(endpoint, SETTINGS)
    file_id = await client.upload(b"".join(batch_line(endpoint, SETTINGS, c) for c in calls))
    info = await client.create(file_id)
    assert not info.finished
    assert await _wait(client, info.id) == "completed"
    done = await client.retrieve(info.id)
    results = {}
    for file in (done.output_file_id, done.error_file_id):
        assert file is not None  # 10% errors among 30 lines: both files exist
        results.update(result_outcomes(await client.content(file), "k"))
    await client.aclose()
    assert server.stats().received == 0
    batches = server.stats().batches
    assert batches is not None
    assert batches["lines_submitted"] == 30

    chat = OpenAIAsyncClient(endpoint, SETTINGS, 4)
    live = {c.call_id: await chat.complete(c) for c in calls}
    await chat.aclose()
    assert {k: (o.ok, o.answer, o.error) for k, o in results.items()} == {
        k: (o.ok, o.answer, o.error) for k, o in live.items()
    }
    assert {o.error for o in results.values()} >= {"malformed_answer", ""}


async def test_a_cancelled_batch_keeps_the_lines_done_so_far(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", batch_delay="fixed:2")
    endpoint = Endpoint(base_url=server.base_url, api_key="k")
    client = OpenAIBatchClient(endpoint, SETTINGS)
    calls = build_calls(load_personas(limit=40))
    info = await client.create(await client.upload(b"".join(batch_line(endpoint, SETTINGS, c) for c in calls)))
    await asyncio.sleep(1.0)
    cancelled = await client.cancel(info.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output_file_id is not None
    kept = (await client.content(cancelled.output_file_id)).splitlines()
    await client.aclose()
    assert 0 < len(kept) < 40
    assert [json.loads(x)["custom_id"] for x in kept] == [c.call_id for c in calls[: len(kept)]]


async def test_unknown_batches_and_bad_input_files_answer_like_openai(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", batch_delay="fixed:0.1")
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    try:
        try:
            await sdk.batches.retrieve("batch_nope")
            raise AssertionError("expected a 404")
        except openai.NotFoundError:
            pass
        bad = await sdk.files.create(file=("x.jsonl", b'{"custom_id": "a"}\n'), purpose="batch")
        batch = await sdk.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert batch.status == "failed"
        assert batch.errors is not None
        assert batch.errors.data
    finally:
        await sdk.close()


async def test_stats_reset_zeroes_the_batch_counters_and_keeps_the_batches(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(latency="zero", batch_delay="fixed:0.05")
    endpoint = Endpoint(base_url=server.base_url, api_key="k")
    client = OpenAIBatchClient(endpoint, SETTINGS)
    calls = build_calls(load_personas(limit=3))
    info = await client.create(await client.upload(b"".join(batch_line(endpoint, SETTINGS, c) for c in calls)))
    assert await _wait(client, info.id) == "completed"
    server.reset_stats()
    batches = server.stats().batches
    assert batches == dict.fromkeys(batches or {"files_uploaded": 1}, 0)
    assert (await client.retrieve(info.id)).id == info.id  # a resumed run re-attaches to its batch
    await client.aclose()
