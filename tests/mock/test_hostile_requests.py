"""The mock answers malformed requests from other people's clients as OpenAI does (400), console clean."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.support.servers import MockServerFactory

CHAT = "/v1/chat/completions"


def raw_status(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(64).split(b"\r\n")[0].split(b" ")[1]


def test_malformed_http_is_400_and_one_line_each_on_the_console(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero")
    port = urlsplit(server.base_url).port
    assert port is not None
    nested = b"[" * 100_000 + b"]" * 100_000
    body = b'{"model":"m","messages":[{"role":"user","content":' + nested + b"}]}"
    requests = [
        b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: %d\r\n\r\n%s"
        % (CHAT.encode(), len(body), body),
    ]
    assert [raw_status(port, request) for request in requests] == [b"400"] * 3
    server.stop()
    log = server.stderr()
    assert "Traceback" not in log
    assert "RecursionError" not in log
    assert len([line for line in log.splitlines() if line.strip()]) <= 2  # one line per malformed message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(-5, "Expected a value >= 1, but got -5", id="negative"),
        pytest.param("lots", "expected an integer, but got str", id="words"),
        pytest.param(10**12, "max_tokens is too large: 1000000000000", id="huge"),
    ],
)
def test_a_bad_max_tokens_is_a_400_as_openai_answers_it(
    mock_server_factory: MockServerFactory, value: object, message: str
) -> None:
    server = mock_server_factory(latency="zero")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": value}
    response = httpx2.post(
        server.base_url + "/chat/completions",
        content=json.dumps(body),
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]
