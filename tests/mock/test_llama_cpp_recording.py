"""A profile recorded from a real llama.cpp server (tests/mock/data/llama-cpp-recorded.toml, its header says
which build, model and commands): what it promises, and the mock replaying it as that server behaved on the
wire — each streamed reply's connection closed right after ``data: [DONE]`` with no ``Connection: close``
(llama-server says ``Keep-Alive`` and closes anyway), JSON replies' connections kept, usage only when asked.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.mock import MockConfig, MockServer
from bench.mock.latency import LatencyModel
from bench.mock.profile import load_profile

RECORDED = Path(__file__).parent / "data" / "llama-cpp-recorded.toml"
ASK: dict[str, Any] = {"model": "tiny.gguf", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def test_the_recording_of_llama_server_promises_what_the_server_did() -> None:
    header = RECORDED.read_text(encoding="utf-8").split("\nname = ", 1)[0]
    for said in ("llama-server", "tiny.gguf", "bench profile record", "2026-12-05"):
        assert said in header
    p = load_profile(str(RECORDED))
    q = p.quirks
    assert (q.connection_close, q.close_announced) == (True, False)
    assert (q.stream_usage, q.sse_done, q.unknown_fields, q.models) == ("requested", True, "ignore", "list")
    assert p.headers.on == "never"
    assert all(v is None for v in p.limits().values())  # llama-server states no limits
    ttft, itl, tokens, latency = (LatencyModel.parse(p.timing[k]) for k in ("ttft", "itl", "output_tokens", "latency"))
    assert tokens.mean == 120  # random weights never end an answer early: the probe's max_tokens
    # The parts add up: a whole reply is its first token's wait and 119 gaps, within 15 %.
    parts = ttft.mean + (tokens.mean - 1) * itl.mean
    assert 0.85 * latency.mean <= parts <= 1.15 * latency.mean, (parts, latency.mean)
    # llama-server's own log put the median decode at 0.48 ms per token (0.35-0.87) for the probe's calls.
    assert 0.35e-3 <= itl.mean <= 0.87e-3


def _exchange(sock: socket.socket, body: dict[str, Any], *, read_to_close: bool) -> tuple[str, bytes]:
    """Send one chat completion on ``sock``; the response's head and body (read to the server's FIN, or
    by its Content-Length)."""
    data = json.dumps(body).encode()
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}"
    sock.sendall(head.encode() + b"\r\n\r\n" + data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response"
        buf += chunk
    raw_head, rest = buf.split(b"\r\n\r\n", 1)
    text = raw_head.decode("latin-1").lower()
    if read_to_close:
        while chunk := sock.recv(65536):  # b"": the server's FIN
            rest += chunk
    else:
        length = int(text.split("content-length:", 1)[1].split("\r\n", 1)[0])
        while len(rest) < length:
            rest += sock.recv(65536)
    return text, rest


@pytest.mark.parametrize("profile", [str(RECORDED), "llamacpp"], ids=["recorded", "built-in"])
def test_the_mock_replaying_it_closes_streamed_replies_unannounced_and_sends_usage_only_when_asked(
    profile: str,
) -> None:
    """The recording, and the built-in ``llamacpp`` profile that follows it."""
    with MockServer(MockConfig(profile=profile)) as server:
        address = urlsplit(server.base_url)
        host, port = address.hostname or "127.0.0.1", address.port or 80

        def connect() -> socket.socket:
            sock = socket.create_connection((host, port), timeout=10)
            sock.settimeout(10)
            return sock

        with connect() as sock:
            head, body = _exchange(sock, {**ASK, "stream": True}, read_to_close=True)  # a FIN, or recv times out
        assert head.startswith("http/1.1 200")
        assert "connection: close" not in head  # unannounced, as llama-server
        assert body.endswith(b"0\r\n\r\n")  # the whole chunked stream came before the FIN
        assert b"data: [DONE]" in body
        assert b'"usage"' not in body
        with connect() as sock:
            asked = {**ASK, "stream": True, "stream_options": {"include_usage": True}}
            _, body = _exchange(sock, asked, read_to_close=True)
        assert b'"choices":[],' in body.replace(b" ", b"")
        assert b'"completion_tokens":4' in body.replace(b" ", b"")
        with connect() as sock:  # JSON replies keep their connection: two on one socket
            for _ in range(2):
                head, body = _exchange(sock, ASK, read_to_close=False)
                assert head.startswith("http/1.1 200")
                assert "connection: close" not in head
                assert json.loads(body)["usage"]["completion_tokens"] == 4
        assert server.stats().received == 4
