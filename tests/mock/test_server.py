"""The mock server process, driven through the real openai SDK (and raw HTTP where the SDK won't go)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from bench.core.calls import QUESTION, Persona, call_id_for, estimate_prompt_tokens, messages_for, parse_answer
from bench.mock import MockConfig, MockServer
from bench.mock.answers import AnswerBook, persona_key
from bench.mock.process import MockStartError, start_mock
from bench.mock.stats import ServerStats

MockServerFactory = Callable[..., MockServer]

MODEL = "gpt-4o-mini"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _persona(i: int) -> Persona:
    return Persona(
        id=i,
        name=f"Voter {i}",
        age=20 + i % 60,
        gender="woman" if i % 2 else "man",
        occupation="teacher",
        city="Dayton",
        state="Ohio",
        education="some college",
    )


def _messages(i: int) -> list[ChatCompletionMessageParam]:
    system, user = messages_for(_persona(i))
    return [{"role": "system", "content": system["content"]}, {"role": "user", "content": user["content"]}]


async def _ask(client: openai.AsyncOpenAI, persona: int, repeat: int) -> str | None:
    response = await client.chat.completions.create(
        model=MODEL,
        messages=_messages(persona),
        response_format={"type": "json_object"},
        extra_headers={"x-bench-call-id": call_id_for(persona, repeat)},
    )
    return parse_answer(response.choices[0].message.content)


def _raw(server: MockServer, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(server.url + path, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def _body_message(error: openai.APIStatusError) -> str:
    """The error body's message (``error.message`` is prefixed with "Error code: …")."""
    assert isinstance(error.body, dict)
    message = error.body["message"]
    assert isinstance(message, str)
    return message


def _wait_until_idle(server: MockServer, timeout: float = 5.0) -> ServerStats:
    """The server's stats once nothing is in flight (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (stats := server.stats()).in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    return stats


def _assert_clean_exit(server: MockServer) -> None:
    server.stop()
    assert server.returncode == 0
    assert server.stderr() == ""


# -- answers -------------------------------------------------------------------------------------


def test_chat_completion_parses_like_openai(mock_server: MockServer) -> None:
    messages = _messages(1)
    with openai.OpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=messages,
            response_format={"type": "json_object"},
            max_tokens=120,
            extra_headers={"x-bench-call-id": "p00001-r000"},
        )
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    content = json.loads(completion.choices[0].message.content or "")
    assert set(content) == {"vote", "reason"}
    assert content["vote"] in ("Harris", "Trump")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == estimate_prompt_tokens(messages_for(_persona(1)))
    assert completion.usage.completion_tokens == len(completion.choices[0].message.content or "") // 4 + 1
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["openai-processing-ms"] == "50.000"
    assert "x-ratelimit-limit-requests" not in raw.headers  # no limit configured
    assert completion.choices[0].message.content == AnswerBook(seed=0).answer(persona_key(messages), 0).content()


async def test_same_call_id_gets_the_same_vote_in_any_order(mock_server: MockServer) -> None:
    calls = [(p, r) for p in range(25) for r in range(2)]
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        forward = {c: await _ask(client, *c) for c in calls[:10]}
        backward_votes = await asyncio.gather(*(_ask(client, *c) for c in reversed(calls)))
    backward = dict(zip(reversed(calls), backward_votes, strict=True))
    assert all(vote in ("Harris", "Trump") for vote in backward.values())
    assert {c: backward[c] for c in forward} == forward
    stats = mock_server.stats(detail=True)
    assert stats.seen_keys == stats.completed_keys == len(calls)


@pytest.mark.slow
async def test_repeats_can_differ_and_match_the_offline_answer_book(mock_server: MockServer) -> None:
    calls = [(p, r) for p in range(30) for r in range(10)]
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        votes = await asyncio.gather(*(_ask(client, p, r) for p, r in calls))
    by_persona: dict[int, set[str | None]] = defaultdict(set)
    book = AnswerBook(seed=0)
    for (p, r), vote in zip(calls, votes, strict=True):
        by_persona[p].add(vote)
        assert vote == book.answer(persona_key(_messages(p)), r).vote
    assert any(len(v) == 2 for v in by_persona.values())  # some persona changed its mind
    assert any(len(v) == 1 for v in by_persona.values())


async def test_streaming_through_the_sdk(mock_server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=_messages(2),
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-bench-call-id": "p00002-r000"},
        )
        pieces: list[str] = []
        usage = None
        finish = None
        async for chunk in stream:
            assert chunk.object == "chat.completion.chunk"
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    content = "".join(pieces)
    assert len([p for p in pieces if p]) > 2
    assert finish == "stop"
    assert content == AnswerBook(seed=0).answer(persona_key(_messages(2)), 0).content()
    assert usage is not None
    assert usage.prompt_tokens == estimate_prompt_tokens(messages_for(_persona(2)))
    assert mock_server.stats().status_counts == {"200": 1}


# -- stats ---------------------------------------------------------------------------------------


async def test_peak_in_flight_equals_the_concurrency_driven(mock_server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        await asyncio.gather(*(_ask(client, p, 0) for p in range(20)))
    stats = mock_server.stats()
    assert stats.peak_in_flight == 20
    assert (stats.received, stats.completed, stats.in_flight) == (20, 20, 0)
    assert stats.status_counts == {"200": 20}
    assert stats.attempts_by_retry_count == {"0": 20}


async def test_reset_zeroes_counters_and_peak(mock_server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        await asyncio.gather(*(_ask(client, p, 0) for p in range(5)))
    before = mock_server.stats()
    assert before.peak_in_flight == 5
    mock_server.reset_stats()
    stats = mock_server.stats(detail=True)
    assert stats.received == stats.completed == stats.peak_in_flight == 0
    assert stats.status_counts == {}
    assert stats.admitted_s == ()
    assert stats.completed_keys == 0
    assert stats.elapsed_s < before.elapsed_s  # the clock restarted too


def test_stats_has_the_documented_keys(mock_server: MockServer) -> None:
    keys = {
        "received",
        "completed",
        "in_flight",
        "peak_in_flight",
        "active",
        "queued",
        "http_429",
        "http_429_tokens",
        "retries_seen",
        "attempts_by_retry_count",
        "status_counts",
        "injected",
        "elapsed_s",
        "peak_active",
    }
    with NO_PROXY.open(mock_server.url + "/stats") as response:
        raw = json.loads(response.read())
    with NO_PROXY.open(mock_server.url + "/stats?detail=1") as response:
        detail = json.loads(response.read())
    assert keys <= set(raw)
    assert {"admitted_s", "completed_keys"} <= set(detail)
    # Parsed once, at the edge, into one typed record that loses nothing of what was served.
    assert ServerStats.from_json(raw).to_json() == raw
    assert ServerStats.from_json(detail).to_json() == detail
    stats = mock_server.stats()
    assert stats.injected == {"error": 0, "timeout": 0, "reset": 0, "malformed": 0}
    assert stats.limits is not None
    assert stats.limits.rpm is None
    assert stats.admitted_s is None  # only with detail


# -- rate limits, capacity, quota ----------------------------------------------------------------


def test_rpm_limit_answers_429_like_openai(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", rpm=60)
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        ok = client.chat.completions.with_raw_response.create(model=MODEL, messages=_messages(1))
        assert ok.headers["x-ratelimit-limit-requests"] == "60"
        assert ok.headers["x-ratelimit-remaining-requests"] == "59"
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=MODEL, messages=_messages(1))
    error = info.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert error.param is None
    assert _body_message(error).startswith(
        "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): "
        "Limit 60, Used 1, Requested 1. Please try again in "
    )
    headers = error.response.headers
    assert 0 < int(headers["retry-after-ms"]) <= 1000
    assert headers["retry-after"] == "1"
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "59"
    assert headers["x-ratelimit-reset-requests"].endswith("ms")
    stats = server.stats()
    assert (stats.http_429, stats.http_429_tokens, stats.status_counts) == (
        1,
        0,
        {"200": 1, "429": 1},
    )


def test_tpm_limit_answers_429_tokens(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", tpm=12_000)  # 200 tokens a second, 200 in the bucket
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        client.chat.completions.create(model=MODEL, messages=_messages(1), max_tokens=120)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=MODEL, messages=_messages(1), max_tokens=120)
    assert (info.value.code, info.value.type) == ("rate_limit_exceeded", "tokens")
    assert "on tokens per min (TPM): Limit 12000" in info.value.message
    assert info.value.response.headers["x-ratelimit-limit-tokens"] == "12000"
    assert server.stats().http_429_tokens == 1


def test_sdk_retries_are_counted(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", rpm=240, burst_seconds=0.25)  # one every 0.25 s, no burst
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=2) as client:
        first = client.chat.completions.with_raw_response.create(model=MODEL, messages=_messages(1))
        second = client.chat.completions.with_raw_response.create(model=MODEL, messages=_messages(2))
    assert first.retries_taken == 0
    assert second.retries_taken >= 1  # the SDK honoured retry-after-ms and tried again
    stats = server.stats()
    assert stats.retries_seen == second.retries_taken
    assert stats.attempts_by_retry_count["1"] == 1
    assert stats.http_429 == second.retries_taken
    assert stats.status_counts["200"] == 2


@pytest.mark.slow
async def test_admitted_times_show_the_steady_rate(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", rpm=600)  # 10 a second, a burst of 10
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=20) as client:
        await asyncio.gather(*(_ask(client, p, 0) for p in range(30)))
    stats = server.stats(detail=True)
    assert stats.admitted_s is not None
    admitted = list(stats.admitted_s)
    assert len(admitted) == 30
    assert admitted == sorted(admitted)
    # The bucket's promise, read from the server's own clock: in any window of admissions, no more
    # than the burst (10) plus 10 a second of refill (1 ms of slack for when the time is read).
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= 10 + 10 * (admitted[j] - start + 0.001), (i, j, admitted)
    assert stats.received == 30 + stats.http_429  # every 429 was retried until admitted
    assert stats.retries_seen == stats.http_429


async def test_capacity_limit_queues_the_rest(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="fixed:0.2", max_concurrency=2)
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        await asyncio.gather(*(_ask(client, p, 0) for p in range(6)))
    stats = server.stats()
    assert stats.peak_in_flight == 6
    assert stats.peak_active == 2
    assert stats.peak_queued == 4
    assert (stats.active, stats.queued) == (0, 0)
    assert stats.completed == 6


def test_quota_runs_out_with_insufficient_quota(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", quota=2)
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        for p in range(2):
            client.chat.completions.create(model=MODEL, messages=_messages(p))
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=MODEL, messages=_messages(3))
    assert (info.value.code, info.value.type) == ("insufficient_quota", "insufficient_quota")
    assert _body_message(info.value).startswith(
        "You exceeded your current quota, please check your plan and billing details."
    )
    assert server.stats().http_429 == 1
    server.reset_stats()  # a reset restores the quota: each benchmark cell starts afresh
    assert (
        _raw(
            server,
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": MODEL, "messages": _messages(1)}).encode(),
        )[0]
        == 200
    )


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "error_type"),
    [
        pytest.param("error_rate", openai.InternalServerError, id="error"),
        pytest.param("timeout_rate", openai.APITimeoutError, id="timeout"),
        pytest.param("reset_rate", openai.APIConnectionError, id="reset"),
    ],
)
def test_faults_surface_as_sdk_errors(mock_server_factory: MockServerFactory, field: str, error_type: type) -> None:
    server = mock_server_factory(latency="fixed:0.01", **{field: 1.0})
    with (
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=0.5) as client,
        pytest.raises(error_type) as info,
    ):
        client.chat.completions.create(model=MODEL, messages=_messages(1))
    if field == "error_rate":
        assert isinstance(info.value, openai.InternalServerError)
        assert info.value.status_code in (500, 503)
        assert info.value.type == "server_error"
    if field == "reset_rate":
        assert not isinstance(info.value, openai.APITimeoutError)
    fault = field.removesuffix("_rate")
    stats = _wait_until_idle(server)  # a hung handler ends when the server notices the disconnect
    assert stats.in_flight == 0
    assert stats.injected[fault] == 1
    assert stats.dropped == (0 if field == "error_rate" else 1)
    _assert_clean_exit(server)  # no tracebacks or warnings from cancelled handlers


def test_malformed_fault_answers_200_with_unparseable_content(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", malformed_rate=1.0)
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        completion = client.chat.completions.create(model=MODEL, messages=_messages(1))
    content = completion.choices[0].message.content
    assert content
    assert parse_answer(content) is None
    assert server.stats().injected["malformed"] == 1


@pytest.mark.slow
def test_sdk_retries_through_transient_errors(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", error_rate=0.5)
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=5) as client:
        taken = [
            client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=_messages(p),
                extra_headers={"x-bench-call-id": call_id_for(p, 0)},
            ).retries_taken
            for p in range(6)
        ]
    stats = server.stats()
    assert sum(taken) == stats.retries_seen == stats.injected["error"]
    assert stats.injected["error"] > 0
    assert stats.status_counts.get("200") == 6


# -- auth, models, bad requests, lifecycle -------------------------------------------------------


def test_api_key_required(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", api_key="sk-mock-expected-key")
    with openai.OpenAI(base_url=server.base_url, api_key="sk-wrong-key-1234", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model=MODEL, messages=_messages(1))
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    assert info.value.code == "invalid_api_key"
    assert "expected" not in info.value.message
    with openai.OpenAI(base_url=server.base_url, api_key="sk-mock-expected-key", max_retries=0) as client:
        assert client.chat.completions.create(model=MODEL, messages=_messages(1)).choices
    assert server.stats().status_counts == {"200": 1, "401": 1}


def test_unknown_model_is_404_when_models_are_listed(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", models=("gpt-4o-mini", "gpt-4o"))
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4o"]
        assert client.chat.completions.create(model="gpt-4o", messages=_messages(1)).model == "gpt-4o"
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model="gpt-5-turbo", messages=_messages(1))
    assert info.value.code == "model_not_found"
    assert _body_message(info.value) == "The model `gpt-5-turbo` does not exist or you do not have access to it."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{not json", "We could not parse the JSON body", id="invalid-json"),
        pytest.param(b"[1, 2]", "must be a JSON object", id="not-an-object"),
        pytest.param(json.dumps({"model": MODEL}).encode(), "Missing required parameter: 'messages'", id="no-messages"),
        pytest.param(
            json.dumps({"messages": [{"role": "user", "content": QUESTION}]}).encode(), "model", id="no-model"
        ),
    ],
)
def test_bad_requests_get_400(mock_server: MockServer, body: bytes, message: str) -> None:
    status, headers, payload = _raw(mock_server, "POST", "/v1/chat/completions", body)
    assert status == 400
    assert payload["error"]["type"] == "invalid_request_error"
    assert message in payload["error"]["message"]
    assert headers["openai-processing-ms"] == "0.000"
    assert mock_server.stats().status_counts == {"400": 1}


def test_health_models_and_unknown_paths(mock_server: MockServer) -> None:
    assert _raw(mock_server, "GET", "/health")[::2] == (200, {"status": "ok"})
    status, _, models = _raw(mock_server, "GET", "/v1/models")
    assert status == 200
    assert models["object"] == "list"
    assert all(m["object"] == "model" for m in models["data"])
    status, _, payload = _raw(mock_server, "GET", "/v1/nothing")
    assert status == 404
    assert payload["error"]["message"] == "Invalid URL (GET /v1/nothing)"
    assert mock_server.stats().received == 0  # only chat completions are counted


@pytest.mark.parametrize(
    "signum", [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGINT, id="sigint")]
)
def test_server_exits_cleanly_on_signals(mock_server_factory: MockServerFactory, signum: signal.Signals) -> None:
    server = mock_server_factory(latency="zero")
    assert server.running
    os.kill(server.pid, signum)
    deadline = time.monotonic() + 5
    while server.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.running
    _assert_clean_exit(server)
    server.stop()  # idempotent


@pytest.mark.slow
def test_startup_failure_is_a_clear_error() -> None:
    with MockServer() as busy:
        port = int(busy.url.rsplit(":", 1)[1])
        clash = MockServer(MockConfig(port=port), startup_timeout=10)
        with pytest.raises(RuntimeError, match="mock server exited with code 1 before listening") as info:
            clash.start()
    assert f"cannot listen on 127.0.0.1:{port}" in str(info.value)
    assert "Traceback" not in str(info.value)
    assert not clash.running


def test_start_mock_says_in_one_line_which_mock_failed(mock_server: MockServer) -> None:
    port = int(mock_server.url.rsplit(":", 1)[1])
    with contextlib.ExitStack() as stack, pytest.raises(MockStartError) as info:
        start_mock(stack, MockConfig(port=port), where="window|lat=fixed:0.02")
    message = str(info.value)
    assert message.startswith("cannot start the mock server for window|lat=fixed:0.02: mock server exited")
    assert "\n" not in message


@pytest.mark.slow
async def test_stream_abandoned_mid_way_is_cancelled_cleanly(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="fixed:60")
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        response = await client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=_messages(1),
            stream=True,
        )
        assert response.headers["openai-processing-ms"] == "60000.000"
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = response.parse()
        async for chunk in stream:
            assert chunk.choices[0].delta.role == "assistant"  # the first chunk comes at once
            break
        await stream.close()  # hang up long before the 60 s answer is done
    # Idle within the wait only if the server cancelled the answer instead of running it out.
    stats = await asyncio.to_thread(_wait_until_idle, server, 20.0)
    assert (stats.in_flight, stats.dropped, stats.completed) == (0, 1, 0)
    _assert_clean_exit(server)


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "assistant", "content": None}, {"role": "user", "content": "hi"}], id="null-content"),
        pytest.param([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], id="content-parts"),
        pytest.param([{"role": "user"}], id="no-content"),
    ],
)
def test_unusual_message_contents_are_answered(mock_server: MockServer, messages: list[dict[str, Any]]) -> None:
    status, _, payload = _raw(
        mock_server,
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": MODEL, "messages": messages}).encode(),
    )
    assert status == 200
    assert parse_answer(payload["choices"][0]["message"]["content"]) in ("Harris", "Trump")
    assert payload["usage"]["prompt_tokens"] > 0
