"""Raw drivers against scripted answers: the SDK's bytes on the wire, its retries, its error names.

Each case runs the same script through the SDK client and the raw httpx2 driver (both on an
``httpx2.MockTransport``, no sockets) and requires the same Outcome and the same requests.
"""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.raw import AiohttpDriver, HttpxDriver, SyncHttpxDriver
from bench.clients.sdk import OpenAIAsyncClient, OpenAISyncClient
from bench.clients.wire import Bodies, Reply, Tries, outcome_from_reply, request_body
from bench.core.ask import Ask
from bench.core.calls import Call, build_calls, load_personas
from tests.support.fakes import completion_body

BASE = "http://fake.test/v1"
KEY = "sk-" + "unit-test-canary-0123456789abcdef"  # built so no literal looks like a key
CALLS = build_calls(load_personas(limit=3))
CALL = CALLS[0]
FAST = {"retry-after-ms": "1"}  # both clients honour it, so retries cost a millisecond
Answer = Callable[[], httpx2.Response | Exception]


def ok(content: str = '{"vote": "Harris", "reason": "r"}') -> Answer:
    headers = {"openai-processing-ms": "12.5"}
    return lambda: httpx2.Response(200, json=completion_body(content), headers=headers)


def error(status: int, kind: str | None, code: str | None = None, **headers: str) -> Answer:
    body = {"error": {"message": f"no (key {KEY})", "type": kind, "param": None, "code": code}}
    return lambda: httpx2.Response(status, json=body, headers={**FAST, **headers})


def raw(status: int, text: str) -> Answer:
    return lambda: httpx2.Response(status, text=text, headers=FAST)


def fail(exc: Exception) -> Answer:
    return lambda: exc


class Script:
    """Answers attempt i with ``answers[i]`` (the last one repeats); keeps every request."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers, self.requests = answers, []  # type: list[Answer], list[httpx2.Request]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]()
        if isinstance(answer, Exception):
            raise answer
        return answer


CASES = [
    pytest.param([ok()], 0, id="ok"),
    pytest.param(
        [error(429, "requests", "rate_limit_exceeded"), error(429, "tokens", "rate_limit_exceeded"), ok()],
        2,
        id="429-429-ok",
    ),
    pytest.param([error(429, "tokens", "rate_limit_exceeded")], 2, id="429-exhausted"),
    pytest.param([error(429, "insufficient_quota", "insufficient_quota")], 3, id="quota-not-retried"),
    pytest.param(
        [error(429, "requests", "rate_limit_exceeded", **{"retry-after-ms": "200000"})], 2, id="retry-after-too-long"
    ),
    pytest.param([error(500, "server_error"), ok()], 2, id="500-ok"),
    pytest.param([error(503, "server_error", **{"x-should-retry": "false"})], 2, id="x-should-retry-false"),
    pytest.param([error(409, "conflict"), error(408, "timeout"), ok()], 2, id="409-408-ok"),
    pytest.param([error(401, "invalid_request_error", "invalid_api_key")], 2, id="401"),
    pytest.param([error(403, "permission_denied")], 2, id="403"),
    pytest.param([error(404, "invalid_request_error", "model_not_found")], 2, id="404"),
    pytest.param([error(400, "invalid_request_error")], 2, id="400-type-only"),
    pytest.param([error(422, None)], 2, id="422-no-detail"),
    pytest.param([error(418, "teapot")], 2, id="418"),
    pytest.param([raw(502, "<html>bad gateway</html>")], 0, id="502-html"),
    pytest.param([ok("I'd vote for whoever")], 0, id="malformed-answer"),
    pytest.param([raw(200, "not json at all")], 0, id="non-json-200"),
    pytest.param([fail(httpx2.ConnectError("refused"))], 1, id="connect-error"),
    pytest.param([fail(httpx2.ReadTimeout("slow")), ok()], 1, id="timeout-then-ok"),
    pytest.param([fail(httpx2.RemoteProtocolError("dropped"))], 0, id="reset"),
]


def _wire(request: httpx2.Request) -> tuple[Any, ...]:
    headers = request.headers
    names = ("authorization", "content-type", "accept", "x-bench-call-id", "x-stainless-retry-count")
    return (request.method, str(request.url), request.content, *(headers.get(n) for n in names))


@pytest.mark.parametrize(("answers", "max_retries"), CASES)
async def test_httpx_driver_matches_the_sdk(answers: list[Answer], max_retries: int) -> None:
    settings = RequestSettings(max_retries=max_retries, timeout_s=5)
    endpoint = Endpoint(base_url=BASE, api_key=KEY)
    sdk_script, raw_script = Script(answers), Script(answers)
    sdk = OpenAIAsyncClient(endpoint, settings, 4, transport=httpx2.MockTransport(sdk_script))
    driver = HttpxDriver(endpoint, settings, 4, transport=httpx2.MockTransport(raw_script))
    try:
        expected, got = await sdk.complete(CALL), await driver.complete(CALL)
    finally:
        await sdk.aclose()
        await driver.aclose()
    assert got == expected
    assert KEY not in got.error
    assert [_wire(r) for r in raw_script.requests] == [_wire(r) for r in sdk_script.requests]


@pytest.mark.parametrize(("answers", "max_retries"), [CASES[1], CASES[3], CASES[5], CASES[15], CASES[17]])
def test_sync_httpx_driver_matches_the_sync_sdk(answers: list[Answer], max_retries: int) -> None:
    settings = RequestSettings(max_retries=max_retries, timeout_s=5)
    endpoint = Endpoint(base_url=BASE, api_key=KEY)
    sdk_script, raw_script = Script(answers), Script(answers)
    sdk = OpenAISyncClient(endpoint, settings, 4, transport=httpx2.MockTransport(sdk_script))
    driver = SyncHttpxDriver(endpoint, settings, 4, transport=httpx2.MockTransport(raw_script))
    try:
        expected, got = sdk.complete(CALL), driver.complete(CALL)
    finally:
        sdk.close()
        driver.close()
    assert got == expected
    assert [_wire(r) for r in raw_script.requests] == [_wire(r) for r in sdk_script.requests]


def test_the_body_is_the_sdks_even_with_a_temperature() -> None:
    seen: list[bytes] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.content)
        return ok()()  # type: ignore[return-value]

    settings, endpoint = RequestSettings(temperature=0.7, max_tokens=50), Endpoint(base_url=BASE, api_key=KEY)
    sdk = OpenAISyncClient(endpoint, settings, 1, transport=httpx2.MockTransport(capture))
    sdk.complete(CALL)
    sdk.close()
    assert json.loads(request_body(endpoint, settings, CALL)) == json.loads(seen[0])
    assert json.loads(seen[0])["temperature"] == 0.7


ASKS = [
    pytest.param(Ask(), id="default"),
    pytest.param(Ask(response_format=None, temperature=0.2, seed=7, extra_body={"ignore_eos": True}), id="fields"),
    pytest.param(Ask(extra_body={"temperature": 1.5, "stream": False}), id="extra-overrides-settings"),
    pytest.param(Ask(extra_body={"model": "other", "top_p": 0.5}), id="extra-names-the-model"),
    pytest.param(Ask(extra_body={"messages": []}), id="extra-names-the-messages"),
]


@pytest.mark.parametrize("ask", ASKS)
@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(RequestSettings(), id="plain"),
        pytest.param(RequestSettings(temperature=0.7, stream=True), id="streamed-warm"),
    ],
)
def test_bodies_from_shared_parts_are_request_body_byte_for_byte(ask: Ask, settings: RequestSettings) -> None:
    endpoint = Endpoint(base_url=BASE, api_key=KEY, model="modèle-ü")
    bodies = Bodies(endpoint, settings)
    calls = [Call(call_id=c.call_id, persona_id=c.persona_id, repeat=0, messages=c.messages, ask=ask) for c in CALLS]
    words = ({"role": "user", "content": "Ça va? 投票 😀"},)
    unicode = Call(call_id="u", persona_id="u", repeat=0, messages=words, ask=ask)
    other = Call(call_id="o", persona_id="o", repeat=0, messages=CALL.messages)  # another Ask in between
    for call in [*calls, unicode, other, *calls]:
        assert bodies(call) == request_body(endpoint, settings, call)


@pytest.mark.parametrize(
    ("headers", "retries_done", "low", "high"),
    [
        pytest.param({"retry-after-ms": "250"}, 0, 0.25, 0.25, id="retry-after-ms"),
        pytest.param({"retry-after": "2"}, 0, 2.0, 2.0, id="retry-after-seconds"),
        pytest.param({"retry-after": "soon"}, 0, 0.375, 0.5, id="garbled-header-backs-off"),
        pytest.param({}, 0, 0.375, 0.5, id="first-backoff"),
        pytest.param({}, 2, 1.5, 2.0, id="third-backoff"),
        pytest.param({}, 6, 6.0, 8.0, id="capped-at-8s"),
    ],
)
def test_waits_follow_the_sdk_schedule(headers: dict[str, str], retries_done: int, low: float, high: float) -> None:
    tries = Tries(RequestSettings(max_retries=10), KEY)
    tries.retries = retries_done
    wait = tries.judge(Reply(429, httpx2.Headers(headers), b"{}"))
    assert isinstance(wait, float)
    assert low <= wait <= high
    assert tries.retries == retries_done + 1
    assert tries.http_429s == 1


def test_a_completion_without_choices_is_malformed() -> None:
    for body in (b'{"id": "x"}', b"[1, 2]", b'{"choices": "nope"}', b"null"):
        outcome = outcome_from_reply(Reply(200, httpx2.Headers(), body), 1, 0, KEY)
        assert outcome == Outcome(ok=False, http_status=200, error="malformed_response", raw_answer=body.decode())


def _closed(client: object) -> bool:
    """Whether the client's HTTP stack has been shut (None for a client this test does not know)."""
    if isinstance(client, OpenAIAsyncClient | OpenAISyncClient):
        return client._sdk.is_closed()
    if isinstance(client, HttpxDriver | SyncHttpxDriver):
        return client._http.is_closed
    if isinstance(client, AiohttpDriver):  # its session is made on first use
        return client._session is None or client._session.closed
    raise AssertionError(f"unknown client {type(client).__name__}")


def test_every_client_builds_and_closes_without_a_loop_running() -> None:
    endpoint, settings = Endpoint(base_url=BASE, api_key=KEY), RequestSettings()
    for kind in CLIENTS.values():
        assert set(kind.runner_factories()) <= {"client_factory", "sync_client_factory"}
        if kind.make_sync is not None:
            client = kind.make_sync(endpoint, settings, 2)
            assert not _closed(client)
            client.close()
            assert _closed(client)
    assert [name for name, kind in CLIENTS.items() if kind.make_sync is None] == ["openai-aiohttp", "aiohttp"]


async def test_async_clients_close_cleanly_even_unused() -> None:
    endpoint, settings = Endpoint(base_url=BASE, api_key=KEY), RequestSettings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for kind in CLIENTS.values():
            client = kind.make(endpoint, settings, 3)
            await client.aclose()
            assert _closed(client), kind
            del client
        gc.collect()
    assert [str(w.message) for w in caught] == []  # no unclosed session or transport left behind
