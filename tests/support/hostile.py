"""Servers that misbehave on purpose, on 127.0.0.1, each in its own thread's event loop.

``HostileServer(behaviour)`` answers every POST with one of ``BEHAVIOURS`` and counts what it
saw and sent, so tests judge the client by what the server observed, not by the clock.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

Writer = asyncio.StreamWriter


def completion(content: str, *, model: str = "gpt-4o-mini", finish: str = "stop", usage: Any = None) -> bytes:
    """A chat completion body with ``content`` as the answer."""
    return json.dumps(
        {
            "id": "chatcmpl-hostile",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    ).encode()


def sse(*events: Any) -> bytes:
    """A chat.completion.chunk stream: one ``data:`` event each (a str event is sent as it is), then [DONE]."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def chunk(content: str | None = None, *, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event."""
    choices = [] if usage is not None else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": choices,
        **({"usage": usage} if usage is not None else {}),
    }


def answer_stream(content: str = '{"vote": "Harris"}', usage: Any = None) -> bytes:
    """A well-formed streamed answer: the content in two chunks, the finish, the usage chunk."""
    half = len(content) // 2
    usage = usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return sse(chunk(content[:half]), chunk(content[half:]), chunk(finish="stop"), chunk(usage=usage))


def head(status: int, reason: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


class HostileServer:
    """One misbehaving endpoint; ``base_url`` ends in ``/v1``."""

    def __init__(self, behaviour: str, **options: Any) -> None:
        self.behaviour, self.options = behaviour, options
        self.requests = 0  # requests answered (a request on a connection closed unanswered is not one)
        self.dropped = 0  # requests that arrived on a connection the server had finished with
        self.bytes_sent = 0
        self.authorizations: list[str] = []
        self.bodies: list[bytes] = []  # each request's body, in the order they arrived
        self.refused = 0  # requests refused for a field the server does not know (``strict``)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        assert self._ready.wait(10), "hostile server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                lines = request.decode("latin-1").split("\r\n")
                fields = (line.partition(":") for line in lines[1:] if line)
                headers = {k.strip().lower(): v.strip() for k, _, v in fields}
                self.bodies.append(await reader.readexactly(int(headers.get("content-length", "0"))))
                self.requests += 1
                self.authorizations.append(headers.get("authorization", ""))
                await BEHAVIOURS[self.behaviour](self, headers, writer)
                await writer.drain()
                if self.options.get("close_after"):
                    await self._hang_up(reader)
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _hang_up(self, reader: asyncio.StreamReader) -> None:
        """Close after the reply, as llama.cpp does; but only once the client has sent its next
        request on this connection, so that a client that reuses it always finds it stale."""
        await reader.readuntil(b"\r\n\r\n")  # IncompleteReadError when the client hangs up first
        self.dropped += 1

    def send(self, writer: Writer, data: bytes) -> None:
        writer.write(data)
        self.bytes_sent += len(data)


async def _drip(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """Headers at once, then one byte every ``interval`` seconds: never a read timeout, never an end."""
    body = completion('{"vote": "Harris"}') + b" " * 100_000
    server.send(writer, head(200, "OK", {"content-type": "application/json", "content-length": str(len(body))}))
    await writer.drain()
    for byte in body:
        server.send(writer, bytes([byte]))
        await writer.drain()
        await asyncio.sleep(server.options.get("interval", 0.05))


async def _drip_head(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """The status line and headers one byte every ``interval`` seconds, endlessly: no read ever times out."""
    server.send(writer, b"HTTP/1.1 200 OK\r\n")
    while True:
        for byte in b"x-padding: slow\r\n":
            server.send(writer, bytes([byte]))
            await writer.drain()
            await asyncio.sleep(server.options.get("interval", 0.05))


async def _huge(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """A 200 whose body never ends (no Content-Length; 1 MiB chunks until the client hangs up)."""
    declared = server.options.get("declare")
    fields = {"content-type": "application/json", "connection": "close"}
    if declared is not None:
        fields["content-length"] = str(declared)
    server.send(writer, head(200, "OK", fields))
    chunk = b"[" * (1024 * 1024)
    for _ in range(server.options.get("chunks", 4096)):
        server.send(writer, chunk)
        await writer.drain()
    raise ConnectionResetError  # close: the body is over when the connection is


async def _gzip_bomb(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """A 200 whose gzip body declares a few KiB and inflates to ``inflated`` bytes (4 MiB)."""
    body = gzip.compress(b" " * server.options.get("inflated", 4 * 1024 * 1024))
    fields = {"content-type": "application/json", "content-encoding": "gzip", "content-length": str(len(body))}
    server.send(writer, head(200, "OK", fields) + body)


def _json_reply(body: bytes, status: int = 200, reason: str = "OK", **extra: str) -> bytes:
    fields = {"content-type": "application/json", "content-length": str(len(body)), **extra}
    return head(status, reason, fields) + body


async def _echo_key(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """Answers with the bearer token as the vote, the model and the finish reason."""
    token = headers.get("authorization", "").removeprefix("Bearer ")
    body = completion(json.dumps({"vote": token}), model=token, finish=token)
    server.send(writer, _json_reply(body))


async def _broken_json(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    server.send(writer, _json_reply(b'{"choices": [{"message": '))


async def _redirect(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    target = server.options["to"]
    fields = {"location": f"{target}/chat/completions", "content-length": "0"}
    server.send(writer, head(301, "Moved Permanently", fields))


async def _ok(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    server.send(writer, _json_reply(completion('{"vote": "Harris"}')))


async def _cut(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """llama.cpp at a small max_tokens: JSON cut short, ``finish_reason=length``, another model's name."""
    body = completion('{"vote": "Har', model="gemma-3-270m", finish="length")
    server.send(writer, _json_reply(body))


async def _lots(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    usage = {"prompt_tokens": "lots", "completion_tokens": 5}
    server.send(writer, _json_reply(completion('{"vote": "Harris"}', usage=usage)))


async def _reply(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """A good answer, streamed (chunked) when ``stream`` is set; ``Connection: close`` when
    ``announce`` is set. With ``close_after`` the server then closes the connection (llama.cpp)."""
    extra = {"connection": "close"} if server.options.get("announce") else {}
    if server.options.get("stream"):
        body = answer_stream()
        fields = {"content-type": "text/event-stream", "transfer-encoding": "chunked", **extra}
        server.send(writer, head(200, "OK", fields) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    else:
        body = completion('{"vote": "Harris"}')
        fields = {"content-type": "application/json", "content-length": str(len(body)), **extra}
        server.send(writer, head(200, "OK", fields) + body)


async def _hang_up(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """Closes the connection without a byte of a response (a fresh one: no stale keep-alive)."""
    raise ConnectionResetError


async def _usage(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """A good answer whose usage says ``completion_tokens: <tokens>`` (raw JSON text), streamed when ``stream``."""
    tokens = server.options["tokens"]
    if server.options.get("stream"):
        text = json.dumps(chunk(usage={"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}))
        usage_event = text.replace('"completion_tokens": 0', f'"completion_tokens": {tokens}')
        body = sse(chunk('{"vote": '), chunk('"Harris"}'), chunk(finish="stop"), usage_event)
        fields = {"content-type": "text/event-stream", "content-length": str(len(body))}
        server.send(writer, head(200, "OK", fields) + body)
    else:
        usage = {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}
        body = completion('{"vote": "Harris"}', usage=usage)
        server.send(
            writer, _json_reply(body.replace(b'"completion_tokens": 0', f'"completion_tokens": {tokens}'.encode()))
        )


async def _stream_body(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """A 200 with ``body`` (bytes) as it is, as ``content_type`` (an event stream unless told)."""
    body: bytes = server.options["body"]
    content_type = server.options.get("content_type", "text/event-stream")
    server.send(writer, head(200, "OK", {"content-type": content_type, "content-length": str(len(body))}) + body)


async def _stall(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """429 asking for an absurd wait: ``retry-after`` of 11 days and a reset of 99999999 hours."""
    body = json.dumps({"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "slow down"}})
    fields = {"retry-after": "999999", "x-ratelimit-reset-requests": "99999999h", "x-should-retry": "true"}
    server.send(writer, _json_reply(body.encode(), 429, "Too Many Requests", **fields))


async def _strict(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """A server that refuses fields it does not know, as ``transformers serve`` refuses vLLM's ``ignore_eos``
    (422, or ``status``); ``refused`` counts those answers. Otherwise a good answer, of ``max_tokens`` words."""
    request = json.loads(server.bodies[-1])
    unknown = {name for name in request if name in server.options.get("unknown", ("ignore_eos",))}
    if server.options.get("refuse_all"):  # refuses every request, whatever its fields
        unknown = {"everything"}
    if unknown:
        server.refused += 1
        status = server.options.get("status", 422)
        body = json.dumps({"detail": f"Unexpected fields in the request: {unknown!r}"}).encode()
        server.send(writer, _json_reply(body, status, "Unprocessable Entity" if status == 422 else "Bad Request"))
        return
    words = int(request.get("max_tokens") or 5)
    usage = {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words}
    server.send(writer, _json_reply(completion(" ".join(["word"] * words), usage=usage)))


async def _unauthorized(server: HostileServer, headers: dict[str, str], writer: Writer) -> None:
    """401 with OpenAI's body: the key is wrong."""
    error = {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}
    server.send(writer, _json_reply(json.dumps({"error": error}).encode(), 401, "Unauthorized"))


BEHAVIOURS: Final[dict[str, Callable[[HostileServer, dict[str, str], Writer], Awaitable[None]]]] = {
    "drip": _drip,
    "drip_head": _drip_head,
    "huge": _huge,
    "gzip_bomb": _gzip_bomb,
    "echo_key": _echo_key,
    "broken_json": _broken_json,
    "redirect": _redirect,
    "ok": _ok,
    "cut": _cut,
    "lots": _lots,
    "stall": _stall,
    "reply": _reply,
    "hang_up": _hang_up,
    "usage": _usage,
    "stream_body": _stream_body,
    "strict": _strict,
    "unauthorized": _unauthorized,
}
