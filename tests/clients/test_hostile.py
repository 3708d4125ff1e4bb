"""Every ``--client`` against servers that misbehave on purpose (tests/support/hostile.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.batch import BATCH_OUTPUT_FACTOR, BatchError, OpenAIBatchClient
from bench.clients.feedback import RateLimitInfo, retry_after_s
from bench.clients.trace import BACKOFF
from bench.core.calls import calls_for_count, load_personas
from tests.support.hostile import HostileServer, answer_stream, chunk, completion, sse

KEY = "sk-" + "hostile-test-0123456789"
CALL = calls_for_count(load_personas(), 1)[0]
ASYNC = list(CLIENTS)
SYNC = [name for name, kind in CLIENTS.items() if kind.has_sync]


def complete(server: HostileServer, client: str, settings: RequestSettings, *, blocking: bool = False) -> Outcome:
    endpoint = Endpoint(base_url=server.base_url, api_key=KEY)
    if blocking:
        make_sync = CLIENTS[client].make_sync
        assert make_sync is not None
        sync = make_sync(endpoint, settings, 1)
        try:
            return sync.complete(CALL)
        finally:
            sync.close()

    async def once() -> Outcome:
        driver = CLIENTS[client].make(endpoint, settings, 1)
        try:
            return await driver.complete(CALL)
        finally:
            await driver.aclose()

    return asyncio.run(once())


CLIENT_FORMS = [pytest.param(name, False, id=name) for name in ASYNC] + [
    pytest.param(name, True, id=f"{name}-sync") for name in SYNC
]


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_timeout_bounds_an_attempt_against_a_server_that_drips_one_byte_at_a_time(client: str, blocking: bool) -> None:
    # The body takes ~5,000 s at this pace; each byte comes well within any read timeout.
    with HostileServer("drip", interval=0.05) as server:
        outcome = complete(server, client, RequestSettings(timeout_s=0.5, max_retries=0), blocking=blocking)
        assert outcome.error == "APITimeoutError"
        assert not outcome.ok
        assert server.requests == 1
        assert server.bytes_sent < 100_000  # the client hung up long before the end of the body


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_timeout_bounds_an_attempt_against_a_server_that_drips_its_headers(client: str, blocking: bool) -> None:
    with HostileServer("drip_head", interval=0.05) as server:
        outcome = complete(server, client, RequestSettings(timeout_s=0.5, max_retries=0), blocking=blocking)
        assert (outcome.ok, outcome.error, outcome.http_status) == (False, "APITimeoutError", None)
        assert server.requests == 1
        assert server.bytes_sent < 200  # ~10 bytes in 0.5 s: the client hung up, it did not wait forever


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
@pytest.mark.parametrize("declare", [None, 4 * 1024**3], ids=["undeclared", "content-length"])
def test_a_body_over_max_response_bytes_is_an_error_row_not_a_memory_leak(
    client: str, blocking: bool, declare: int | None
) -> None:
    settings = RequestSettings(timeout_s=30, max_retries=0, max_response_bytes=256 * 1024)
    with HostileServer("huge", declare=declare) as server:
        outcome = complete(server, client, settings, blocking=blocking)
        assert outcome.error == "response_too_large: body over 262144 bytes"
        assert outcome.http_status == 200
        assert server.bytes_sent < 256 * 1024**2  # of the 4 GiB it would have sent


def test_a_small_compressed_body_is_capped_by_what_it_inflates_to() -> None:
    # The aiohttp driver reads a body of declared length in one go: only when there is nothing to inflate.
    settings = RequestSettings(timeout_s=30, max_retries=0, max_response_bytes=256 * 1024)
    with HostileServer("gzip_bomb") as server:
        outcome = complete(server, "aiohttp", settings)
    assert (outcome.error, outcome.http_status) == ("response_too_large: body over 262144 bytes", 200)
    assert server.bytes_sent < 64 * 1024  # what it sent was small; what it meant was not


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_streamed_body_over_max_response_bytes_is_cut_too(client: str, blocking: bool) -> None:
    settings = RequestSettings(timeout_s=30, max_retries=0, max_response_bytes=256 * 1024, stream=True)
    with HostileServer("huge") as server:
        outcome = complete(server, client, settings, blocking=blocking)
        assert outcome.error == "response_too_large: body over 262144 bytes"
        assert outcome.http_status == 200
        assert server.bytes_sent < 256 * 1024**2  # of the 4 GiB it would have sent


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_redirect_is_not_followed_and_its_row_names_the_target(client: str, blocking: bool) -> None:
    with HostileServer("ok") as other:
        target = other.base_url.replace("127.0.0.1", "localhost")
        with HostileServer("redirect", to=target) as server:
            outcome = complete(server, client, RequestSettings(timeout_s=5, max_retries=2), blocking=blocking)
        assert outcome.error == "redirect_not_followed: HTTP 301 to localhost"
        assert outcome.http_status == 301
        assert outcome.attempts == 1
        assert other.requests == 0


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_200_with_broken_json_has_one_name_on_every_client(client: str, blocking: bool) -> None:
    with HostileServer("broken_json") as server:
        outcome = complete(server, client, RequestSettings(timeout_s=5, max_retries=0), blocking=blocking)
    assert (outcome.error, outcome.http_status) == ("malformed_response", 200)
    assert outcome.raw_answer == '{"choices": [{"message": '


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_server_echoing_the_key_leaves_it_in_no_field(client: str, blocking: bool) -> None:
    with HostileServer("echo_key") as server:
        outcome = complete(server, client, RequestSettings(timeout_s=5, max_retries=0), blocking=blocking)
        assert server.authorizations == [f"Bearer {KEY}"]
    fields = dataclasses.asdict(outcome)
    assert not [name for name, value in fields.items() if KEY in str(value)]
    assert "***" in outcome.answer + outcome.error  # answer or invalid_choice: the key, scrubbed


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_cut_answer_keeps_its_evidence(client: str, blocking: bool) -> None:
    with HostileServer("cut") as server:
        outcome = complete(server, client, RequestSettings(timeout_s=5, max_retries=0), blocking=blocking)
    evidence = (outcome.error, outcome.finish_reason, outcome.served_model)
    assert evidence == ("malformed_answer", "length", "gemma-3-270m")
    assert outcome.raw_answer == '{"vote": "Har'


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_token_counts_that_are_not_numbers_are_left_empty(client: str, blocking: bool) -> None:
    with HostileServer("lots") as server:
        outcome = complete(server, client, RequestSettings(timeout_s=5, max_retries=0), blocking=blocking)
    assert outcome.ok
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (None, 5)


@pytest.mark.parametrize("client", ["httpx", "aiohttp"])
def test_the_raw_drivers_do_not_wait_11_days_and_say_so(client: str) -> None:
    with HostileServer("stall") as server:
        outcome = complete(server, client, RequestSettings(timeout_s=5, max_retries=2))
        assert server.requests == 1
    note = "(retry-after 999999 s is over the 120 s cap: not waited)"
    assert outcome.error == f"RateLimitError: rate_limit_exceeded {note}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms-first"),
        pytest.param({"retry-after": "3"}, 3.0, id="seconds"),
        pytest.param({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0, id="date-in-the-past"),
        pytest.param({"retry-after": "-4"}, None, id="negative"),
        pytest.param({"retry-after": "nan"}, None, id="nan"),
        pytest.param({"retry-after": "inf"}, None, id="infinite"),
        pytest.param({"retry-after": "soon"}, None, id="words"),
        pytest.param({"retry-after-ms": "x", "retry-after": "2"}, 2.0, id="bad-ms-falls-back"),
    ],
)
def test_one_retry_after_parser_accepts_only_finite_non_negative_waits(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after_s(headers) == expected


def test_a_servers_absurd_waits_are_capped_before_anyone_obeys_them() -> None:
    headers = {"retry-after": "999999", "x-ratelimit-reset-requests": "99999999h", "x-ratelimit-limit-requests": "60"}
    info = RateLimitInfo.from_headers(0.0, 429, headers)
    assert (info.retry_after_s, info.reset_requests_s, info.capped) == (None, None, True)  # refused, not obeyed
    assert RateLimitInfo.from_headers(0.0, 429, {"retry-after": "2"}).capped is False


def complete_all(
    server: HostileServer, client: str, settings: RequestSettings, count: int, *, blocking: bool = False
) -> list[Outcome]:
    """``count`` calls one after another on one client (C=1): the second reuses the first's connection."""
    endpoint = Endpoint(base_url=server.base_url, api_key=KEY)
    calls = calls_for_count(load_personas(), count)
    if blocking:
        make_sync = CLIENTS[client].make_sync
        assert make_sync is not None
        sync = make_sync(endpoint, settings, 1)
        try:
            return [sync.complete(call) for call in calls]
        finally:
            sync.close()

    async def run() -> list[Outcome]:
        driver = CLIENTS[client].make(endpoint, settings, 1)
        try:
            return [await driver.complete(call) for call in calls]
        finally:
            await driver.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("announce", [False, True], ids=["silent", "connection-close"])
def test_a_connection_the_server_closed_after_its_reply_is_a_reconnect_not_a_retry(
    client: str, blocking: bool, stream: bool, announce: bool
) -> None:
    settings = RequestSettings(timeout_s=10, max_retries=2, stream=stream)
    with HostileServer("reply", close_after=True, stream=stream, announce=announce) as server:
        outcomes = complete_all(server, client, settings, 3, blocking=blocking)
        assert server.requests == 3  # one request per call reached the server, no more
    assert [o.error for o in outcomes] == ["", "", ""]
    assert [o.attempts for o in outcomes] == [1, 1, 1]
    # Each call after the first found its connection stale (re-sent on a new one), or did not reuse it.
    assert [o.reconnects for o in outcomes] == ([0, 1, 1] if server.dropped else [0, 0, 0])
    assert server.dropped in (0, 2)
    if announce:
        assert server.dropped == 0  # Connection: close honoured: the closed connection is not reused
    assert [BACKOFF in (part for _, part in o.trace.marks) for o in outcomes if o.trace] == [False] * 3


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_fresh_connection_closed_without_an_answer_is_a_failed_attempt_not_a_reconnect(
    client: str, blocking: bool
) -> None:
    with HostileServer("hang_up") as server:
        outcome = complete(server, client, RequestSettings(timeout_s=10, max_retries=1), blocking=blocking)
        assert server.requests == 2  # the first attempt and the SDK's one retry, each on a new connection
    assert (outcome.ok, outcome.attempts, outcome.reconnects, outcome.http_status) == (False, 2, 0, None)


STREAMED = [pytest.param(False, id="json"), pytest.param(True, id="stream")]


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
@pytest.mark.parametrize("stream", STREAMED)
@pytest.mark.parametrize("tokens", ["-7", "1e30", "1000000000000", "2.5", "NaN"])
def test_a_token_count_outside_sense_is_a_malformed_response_not_a_fact(
    client: str, blocking: bool, stream: bool, tokens: str
) -> None:
    settings = RequestSettings(timeout_s=5, max_retries=0, stream=stream)
    with HostileServer("usage", tokens=tokens, stream=stream) as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.ok, outcome.error, outcome.http_status) == (False, "malformed_response", 200)
    assert (outcome.prompt_tokens, outcome.completion_tokens, outcome.output_tokens) == (None, None, None)
    assert repr(json.loads(tokens)) in outcome.raw_answer  # the evidence says which count was absurd


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
@pytest.mark.parametrize("stream", STREAMED)
def test_a_sensible_token_count_is_recorded(client: str, blocking: bool, stream: bool) -> None:
    settings = RequestSettings(timeout_s=5, max_retries=0, stream=stream)
    with HostileServer("usage", tokens="1000000000", stream=stream) as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.ok, outcome.completion_tokens) == (True, 10**9)
    assert outcome.output_tokens == (10**9 if stream else None)


ANSWER = '{"vote": "Harris"}'
MALFORMED_STREAMS = [
    pytest.param(b"data: \xff\xfe\n\n", id="not-utf8"),
    pytest.param(b"data: {not json\n\n", id="not-json"),
    pytest.param(b'data: {"choices": "abc"}\n\n', id="choices-a-string"),
    pytest.param(b'data: {"choices": [{"delta": 5}]}\n\n', id="delta-a-number"),
    pytest.param(b'data: {"choices": [{"delta": {"content": 7}}]}\n\n', id="content-a-number"),
    pytest.param(b'data: {"choices": [], "usage": [1, 2]}\n\n', id="usage-a-list"),
    pytest.param(b"data: [1, 2]\n\n", id="event-a-list"),
]


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
@pytest.mark.parametrize("bad", MALFORMED_STREAMS)
def test_a_malformed_stream_is_a_malformed_response_on_every_client(client: str, blocking: bool, bad: bytes) -> None:
    body = sse(chunk('{"vote": '))[: -len("data: [DONE]\n\n")] + bad + b"data: [DONE]\n\n"
    settings = RequestSettings(timeout_s=5, max_retries=2, stream=True)
    with HostileServer("stream_body", body=body) as server:
        outcome = complete(server, client, settings, blocking=blocking)
        assert server.requests == 1  # a malformed reply is an answer: not retried
    assert (outcome.ok, outcome.error, outcome.http_status, outcome.attempts) == (False, "malformed_response", 200, 1)


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_an_event_split_over_two_data_lines_is_one_event(client: str, blocking: bool) -> None:
    event = json.dumps(chunk(ANSWER, finish="stop"))
    cut = event.index('"choices"')
    body = f"data: {event[:cut]}\ndata: {event[cut:]}\n\n".encode() + sse(chunk(usage={"prompt_tokens": 3}))
    settings = RequestSettings(timeout_s=5, max_retries=0, stream=True)
    with HostileServer("stream_body", body=body) as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.error, outcome.answer, outcome.prompt_tokens) == ("", "Harris", 3)


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_the_response_cap_counts_a_streams_payload_not_its_framing(client: str, blocking: bool) -> None:
    keep_alive = b": keep-alive\n\n" * 20_000  # 280 kB of comments, no payload
    body = keep_alive + answer_stream()
    settings = RequestSettings(timeout_s=10, max_retries=0, stream=True, max_response_bytes=64 * 1024)
    with HostileServer("stream_body", body=body) as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.error, outcome.answer) == ("", "Harris")


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_streams_payload_over_the_cap_is_cut(client: str, blocking: bool) -> None:
    body = sse(*[chunk("x" * 1000) for _ in range(100)])  # 100 kB of content, each event under the cap
    settings = RequestSettings(timeout_s=10, max_retries=0, stream=True, max_response_bytes=64 * 1024)
    with HostileServer("stream_body", body=body) as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.error, outcome.http_status) == ("response_too_large: body over 65536 bytes", 200)


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
def test_a_server_that_ignores_stream_true_is_read_as_one_reply(client: str, blocking: bool) -> None:
    settings = RequestSettings(timeout_s=5, max_retries=0, stream=True)
    with HostileServer("stream_body", body=completion(ANSWER), content_type="application/json") as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.ok, outcome.answer, outcome.completion_tokens) == (True, "Harris", 5)


NO_CHOICES = [
    pytest.param({}, id="missing"),
    pytest.param({"choices": None}, id="null"),
    pytest.param({"choices": []}, id="empty"),
]


@pytest.mark.parametrize(("client", "blocking"), CLIENT_FORMS)
@pytest.mark.parametrize("stream", STREAMED)
@pytest.mark.parametrize("choices", NO_CHOICES)
def test_a_200_without_choices_has_one_name_on_every_client(
    client: str, blocking: bool, stream: bool, choices: dict[str, object]
) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}
    reply = {"id": "chatcmpl-hostile", "object": "chat.completion", "model": "gpt-4o-mini", "usage": usage, **choices}
    if stream:
        body = sse({**reply, "object": "chat.completion.chunk"})
        content_type = "text/event-stream"
    else:
        body, content_type = json.dumps(reply).encode(), "application/json"
    settings = RequestSettings(timeout_s=5, max_retries=0, stream=stream)
    with HostileServer("stream_body", body=body, content_type=content_type) as server:
        outcome = complete(server, client, settings, blocking=blocking)
    assert (outcome.ok, outcome.error, outcome.http_status) == (False, "malformed_response", 200)


def batch_call(server: HostileServer, settings: RequestSettings, method: str, *args: str) -> BatchError:
    async def run() -> BatchError:
        client = OpenAIBatchClient(Endpoint(base_url=server.base_url, api_key=KEY), settings)
        try:
            await getattr(client, method)(*args)
        except BatchError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError(f"{method} did not fail")

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("behaviour", "method", "args"),
    [
        pytest.param("drip_head", "retrieve", ("batch_1",), id="status-headers-dripped"),
        pytest.param("drip", "content", ("file-1",), id="content-body-dripped"),
        pytest.param("drip_head", "upload", ("{}\n",), id="upload-answer-dripped"),
    ],
)
def test_every_batch_request_ends_by_the_timeout(behaviour: str, method: str, args: tuple[str, ...]) -> None:
    with HostileServer(behaviour, interval=0.05) as server:
        error = batch_call(server, RequestSettings(timeout_s=0.5, max_retries=0), method, *args)
        assert server.requests == 1
    assert str(error) == "APITimeoutError"


def test_a_batch_output_file_is_capped() -> None:
    settings = RequestSettings(timeout_s=30, max_retries=0, max_response_bytes=64 * 1024)
    with HostileServer("huge") as server:
        error = batch_call(server, settings, "content", "file-1")
        assert server.bytes_sent < 256 * 1024**2  # of the 4 GiB it would have sent
    cap = 64 * 1024 * BATCH_OUTPUT_FACTOR
    assert (str(error), error.http_status) == (f"response_too_large: body over {cap} bytes", 200)
