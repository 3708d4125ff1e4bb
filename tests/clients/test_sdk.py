"""The SDK client against scripted answers (respx via pytest-httpx2): attempts, 429s, errors."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import respx

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.sdk import OpenAIAsyncClient, OpenAISyncClient
from bench.core.calls import build_calls, load_personas
from tests.support.fakes import completion_body

BASE = "http://fake.test/v1"
URL = f"{BASE}/chat/completions"
KEY = "sk-" + "unit-test-canary-0123456789abcdef"  # built so no literal looks like a key
CALL = build_calls(load_personas(limit=1))[0]
OK = httpx.Response(200, json=completion_body(json.dumps({"vote": "Harris", "reason": "r"})))


def rate_limited(code: str = "rate_limit_exceeded", retry_after_ms: str = "1") -> httpx.Response:
    kind = "insufficient_quota" if code == "insufficient_quota" else "requests"
    body = {"error": {"message": "Rate limit reached", "type": kind, "param": None, "code": code}}
    return httpx.Response(429, json=body, headers={"retry-after-ms": retry_after_ms, "retry-after": "1"})


def client(max_retries: int = 2, timeout_s: float = 5.0) -> OpenAIAsyncClient:
    return OpenAIAsyncClient(
        Endpoint(base_url=BASE, api_key=KEY), RequestSettings(max_retries=max_retries, timeout_s=timeout_s), 4
    )


async def test_hidden_retries_are_counted(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(side_effect=[rate_limited(), rate_limited(), OK])
    outcome = await client().complete(CALL)
    assert outcome.ok
    assert outcome.answer == "Harris"
    assert outcome.attempts == 3
    assert outcome.http_429s == 2
    assert [c.request.headers["x-stainless-retry-count"] for c in route.calls] == ["0", "1", "2"]
    assert route.calls[0].request.headers["x-bench-call-id"] == CALL.call_id


async def test_retry_after_ms_is_honoured(httpx2_mock: respx.Router) -> None:
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return rate_limited(retry_after_ms="300") if len(seen) == 1 else OK

    httpx2_mock.post(URL).mock(side_effect=answer)
    outcome = await client().complete(CALL)
    assert outcome.ok
    assert outcome.attempts == 2
    assert seen[1] - seen[0] >= 0.3


async def test_exhausted_retries_end_as_one_error_outcome(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(return_value=rate_limited())
    outcome = await client(max_retries=2).complete(CALL)
    assert not outcome.ok
    assert outcome.http_status == 429
    assert outcome.error == "RateLimitError: rate_limit_exceeded"
    assert outcome.attempts == 3 == route.call_count
    assert outcome.http_429s == 3


async def test_insufficient_quota_is_not_retried(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(return_value=rate_limited("insufficient_quota"))
    outcome = await client(max_retries=5).complete(CALL)
    assert route.call_count == 1
    assert outcome.error == "RateLimitError: insufficient_quota"
    assert outcome.attempts == 1


@pytest.mark.parametrize(
    ("response", "status", "error"),
    [
        pytest.param(
            httpx.Response(
                500, json={"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
            ),
            500,
            "InternalServerError: server_error",
            id="500",
        ),
        pytest.param(
            httpx.Response(
                401,
                json={
                    "error": {
                        "message": f"Incorrect API key provided: {KEY}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            ),
            401,
            "AuthenticationError: invalid_api_key",
            id="401",
        ),
        pytest.param(
            httpx.Response(
                404,
                json={
                    "error": {
                        "message": "The model does not exist",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                },
            ),
            404,
            "NotFoundError: model_not_found",
            id="404",
        ),
        pytest.param(
            httpx.Response(200, json=completion_body("I'd vote for whoever")), 200, "malformed_answer", id="malformed"
        ),
        pytest.param(httpx.Response(200, text="not json at all"), 200, "malformed_response", id="non-json-200"),
    ],
)
async def test_errors_become_outcomes(
    httpx2_mock: respx.Router, response: httpx.Response, status: int | None, error: str
) -> None:
    httpx2_mock.post(URL).mock(return_value=response)
    outcome = await client(max_retries=0).complete(CALL)
    assert not outcome.ok
    assert outcome.error.startswith(error)
    assert status is None or outcome.http_status == status
    assert KEY not in outcome.error


async def test_connection_errors_count_their_attempts(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(side_effect=httpx.ConnectError("refused"))
    outcome = await client(max_retries=1).complete(CALL)
    assert route.call_count == 2
    assert outcome.error.startswith("APIConnectionError")
    assert outcome.attempts == 2
    assert outcome.http_status is None


def test_sync_client_counts_retries_too(httpx2_mock: respx.Router) -> None:
    httpx2_mock.post(URL).mock(side_effect=[rate_limited(), OK])
    sync = OpenAISyncClient(Endpoint(base_url=BASE, api_key=KEY), RequestSettings(), 2)
    outcome = sync.complete(CALL)
    sync.close()
    assert outcome.ok
    assert outcome.attempts == 2
    assert outcome.http_429s == 1
