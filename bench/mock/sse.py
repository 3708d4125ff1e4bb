"""Server-sent events: a chat completion streamed as ``chat.completion.chunk`` events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bench.mock import responses as r


async def stream_answer(
    request: web.BaseRequest,
    *,
    headers: dict[str, str],
    chunk: dict[str, Any],
    pieces: Sequence[tuple[float, str]],
    finish_reason: str,
    usage: dict[str, Any] | None,
    usage_in_final: bool = False,
    done: bool = True,
    close: bool = False,
    announce_close: bool = True,
) -> web.StreamResponse:
    """Send the answer as SSE ``chat.completion.chunk`` events, each piece at its offset in seconds.

    Offsets count from the first write and are kept on an absolute clock, so sleeping's own
    overhead does not pile up over a long answer. A profile's quirks: ``usage_in_final`` puts the usage
    on the finish chunk (no usage chunk of its own), ``done=False`` leaves out ``data: [DONE]``, ``close``
    ends the connection after the stream: with ``Connection: close``, or (``announce_close=False``, as
    llama.cpp's server) unannounced, the socket closed right after the stream's last bytes.
    """
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    if close and announce_close:
        response.force_close()
    await response.prepare(request)
    with_usage = usage is not None and not usage_in_final
    await response.write(
        r.chunk_event(delta={"role": "assistant", "content": "", "refusal": None}, with_usage_field=with_usage, **chunk)
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at, piece in pieces:
        wait = start + at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await response.write(r.chunk_event(delta={"content": piece}, with_usage_field=with_usage, **chunk))
    final_usage = usage if usage_in_final else None
    await response.write(
        r.chunk_event(
            delta={},
            finish_reason=finish_reason,
            usage_value=final_usage,
            with_usage_field=with_usage or final_usage is not None,
            **chunk,
        )
    )
    if usage is not None and not usage_in_final:
        await response.write(r.chunk_event(delta=None, usage_value=usage, with_usage_field=True, **chunk))
    if done:
        await response.write(r.DONE_EVENT)
    await response.write_eof()
    if close and not announce_close and request.transport is not None:
        request.transport.close()  # the written bytes go first, then the FIN
    return response
