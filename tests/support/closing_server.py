"""A small OpenAI-compatible server that streams like llama.cpp's llama-server (a 2026-12-05 build,
docs/lab/2026-12-05-llama-cpp.md): every reply says ``Keep-Alive: timeout=5, max=100``, yet the connection
is closed right after each streamed reply (no ``Connection: close``); JSON replies keep it open. A stream
starts with a role chunk, carries usage only when ``stream_options.include_usage`` asks for it (a chunk
of its own, ``choices: []``) and ends with ``data: [DONE]``; unknown fields are ignored. Plain asyncio in
a thread of the test's process; answers are fixed text. Used where llama.cpp itself is not available.

``linger_s`` holds the close back that long after the stream's last bytes: a client that sends its next
request on the pooled connection within it meets a stale connection for certain (llama.cpp's FIN trails
by ~0.1 ms, so on a real server that is a race a client loses now and then).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ANSWER = ("Hello", " from", " the", " closing", " server", ".")


KEEP_ALIVE = "Keep-Alive: timeout=5, max=100\r\n"


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counts: dict[str, int], linger_s: float
) -> None:
    counts["connections"] += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path.endswith("/models"):
                _json(writer, {"object": "list", "data": [{"id": "local", "object": "model"}]})
            elif method == "POST" and path.endswith("/chat/completions"):
                request: dict[str, Any] = json.loads(body)
                counts["chats"] += 1
                if request.get("stream"):
                    await _stream(writer, request)
                    counts["streams"] += 1
                    if linger_s:
                        await asyncio.sleep(linger_s)
                    writer.close()  # as llama-server does after a streamed reply, unannounced
                    return
                _json(writer, _completion(request))
            else:
                _json(writer, {"error": {"code": 404, "message": "not found", "type": "not_found_error"}}, 404)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _json(writer: asyncio.StreamWriter, payload: Any, status: int = 200) -> None:
    data = json.dumps(payload).encode()
    head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{KEEP_ALIVE}\r\n"
    writer.write(head.encode() + data)


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 12, "completion_tokens": len(ANSWER), "total_tokens": 12 + len(ANSWER)}


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": "".join(ANSWER)}
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "model": request.get("model", "local"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage(),
    }


async def _stream(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
    writer.write(
        f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n{KEEP_ALIVE}\r\n".encode()
    )

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
        chunk: dict[str, Any] = {"id": "chatcmpl-local", "object": "chat.completion.chunk", "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        data = f"data: {json.dumps(chunk)}\n\n".encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    event([{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}])
    for piece in ANSWER:
        event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        await writer.drain()
        await asyncio.sleep(0.002)
    event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if (request.get("stream_options") or {}).get("include_usage"):
        event([], _usage())
    done = b"data: [DONE]\n\n"
    writer.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
    await writer.drain()


@contextmanager
def closing_server(linger_s: float = 0.0) -> Iterator[tuple[str, dict[str, int]]]:
    """``(base_url, counts)`` of a server running in a thread until the block ends: connections opened,
    chat completions answered, streams among them."""
    counts = {"connections": 0, "chats": 0, "streams": 0}
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: _handle(r, w, counts, linger_s), "127.0.0.1", 0)
        holder["port"] = server.sockets[0].getsockname()[1]
        holder["server"] = server
        started.set()
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(_swallow(main())), daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1", counts
    finally:
        loop.call_soon_threadsafe(holder["server"].close)
        thread.join(5)
        loop.close()


async def _swallow(coro: Any) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        pass
