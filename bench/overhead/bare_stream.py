"""A bare loop that streams the harness's requests and times the first content chunk, in its own process.

``python -m bench.overhead.bare_stream URL CONCURRENCY MODEL [aiohttp|openai]`` (aiohttp + a semaphore, or
``AsyncOpenAI`` + a semaphore iterating the SDK's chunks) reads the calls' ids and messages from stdin
(one JSON object a line, then an empty line), prints ``ready``, waits for ``go`` on stdin (so that it
starts with the harness it is compared with) and prints one JSON object: each call's TTFT in seconds from
its send. Its own process, so that neither client's event loop delays the other's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence

import aiohttp

from bench.clients.base import CALL_ID_HEADER, Endpoint, RequestSettings
from bench.clients.wire import request_body, session_headers
from bench.core.calls import Call


def first_content(line: bytes) -> bool:
    """Whether an SSE line is a chunk with content (the event that ends TTFT)."""
    if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
        return False
    event = json.loads(line[5:])
    return any((choice.get("delta") or {}).get("content") for choice in event.get("choices") or [])


async def bare_stream_loop(base_url: str, calls: Sequence[Call], concurrency: int, model: str) -> list[float]:
    """Each call's TTFT (seconds from its send to its first content chunk), aiohttp + a semaphore."""
    endpoint = Endpoint(base_url=base_url, api_key="overhead", model=model)
    settings, url = RequestSettings(stream=True), base_url + "/chat/completions"
    window = asyncio.Semaphore(concurrency)
    ttfts: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=session_headers(endpoint)) as session:

        async def one(call: Call) -> None:
            body = request_body(endpoint, settings, call)
            headers = {CALL_ID_HEADER: call.call_id, **call.ask.headers()}
            async with window:
                start, first = time.perf_counter(), None
                async with session.post(url, data=body, headers=headers) as response:
                    async for line in response.content:
                        if first is None and first_content(line):
                            first = time.perf_counter() - start
                if first is not None:
                    ttfts.append(first)

        await asyncio.gather(*(one(call) for call in calls))
    return ttfts


async def bare_openai_stream_loop(base_url: str, calls: Sequence[Call], concurrency: int, model: str) -> list[float]:
    """Each call's TTFT through ``AsyncOpenAI(stream=True)`` + a semaphore: what an SDK user would write."""
    import httpx2
    import openai

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(
        api_key="overhead",
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpx2Client(limits=limits),
    )
    window = asyncio.Semaphore(concurrency)
    ttfts: list[float] = []

    async def one(call: Call) -> None:
        async with window:
            start, first = time.perf_counter(), None
            stream = await client.chat.completions.create(  # type: ignore[call-overload]
                model=model,
                messages=list(call.messages),
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={CALL_ID_HEADER: call.call_id, **call.ask.headers()},
                **call.ask.body(),
            )
            async for chunk in stream:
                if first is None and any(choice.delta and choice.delta.content for choice in chunk.choices):
                    first = time.perf_counter() - start
            if first is not None:
                ttfts.append(first)

    await asyncio.gather(*(one(call) for call in calls))
    await client.close()
    return ttfts


def main(argv: Sequence[str]) -> None:
    base_url, concurrency, model = argv[0], int(argv[1]), argv[2]
    loop = bare_openai_stream_loop if argv[3:] == ["openai"] else bare_stream_loop
    calls = []
    for line in sys.stdin:
        if not line.strip():
            break
        item = json.loads(line)
        calls.append(
            Call(
                call_id=item["call_id"],
                persona_id=item["persona_id"],
                repeat=item["repeat"],
                messages=tuple(item["messages"]),
            )
        )
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # go
    ttfts = asyncio.run(loop(base_url, calls, concurrency, model))
    sys.stdout.write(json.dumps({"ttft_s": ttfts}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
