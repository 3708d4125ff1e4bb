"""Synthetic-length load: distinct prompts of about N tokens, no JSON mode, max_tokens M with ignore_eos."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings, judged
from bench.clients.wire import request_body
from bench.engine.options import RunOptions
from bench.engine.session import request_settings
from bench.mock import MockServer
from bench.synthetic import synthetic_calls

ENDPOINT = Endpoint(base_url="http://x.test/v1", api_key="k")


def test_prompts_are_about_n_tokens_and_share_no_prefix() -> None:
    calls = synthetic_calls(50, 200)
    texts = [c.messages[0]["content"] for c in calls]
    assert len({t.split(":")[0] for t in texts}) == 50  # each starts with its own number
    assert all(195 <= len(t.split()) <= 205 for t in texts)  # ~1 token a word
    assert len({c.call_id for c in calls}) == 50


def test_a_synthetic_run_asks_for_m_tokens_without_json_mode() -> None:
    settings = request_settings(RunOptions.from_params({"prompt_tokens": 100, "output_tokens": 64}))
    body = json.loads(request_body(ENDPOINT, settings, synthetic_calls(1, 100)[0]))
    assert body["max_tokens"] == 64
    assert body["ignore_eos"] is True
    assert "response_format" not in body
    plain = request_settings(RunOptions.from_params({"output_tokens": 64, "no_ignore_eos": True}))
    assert "ignore_eos" not in json.loads(request_body(ENDPOINT, plain, synthetic_calls(1, 10)[0]))
    persona = json.loads(request_body(ENDPOINT, request_settings(RunOptions.from_params({})), synthetic_calls(1, 5)[0]))
    assert persona["response_format"] == {"type": "json_object"}


def test_without_json_mode_any_completed_answer_is_a_success() -> None:
    unread = Outcome(ok=False, http_status=200, error="malformed_answer")
    assert judged(unread, RequestSettings(json_mode=False)).ok
    assert not judged(unread, RequestSettings()).ok
    assert not judged(
        Outcome(ok=False, http_status=500, error="InternalServerError"), RequestSettings(json_mode=False)
    ).ok


@pytest.mark.parametrize("client", ["openai", "aiohttp"])
def test_the_mock_honours_ignore_eos_with_exactly_max_tokens(mock_server: MockServer, client: str) -> None:
    server = mock_server  # fixed 0.05 s, shared by the session
    settings = RequestSettings(max_tokens=40, json_mode=False, ignore_eos=True)

    async def go() -> list[Outcome]:
        driver = CLIENTS[client].make(Endpoint(base_url=server.base_url, api_key="k"), settings, 4)
        try:
            return [await driver.complete(c) for c in synthetic_calls(4, 50)]
        finally:
            await driver.aclose()

    seen = asyncio.run(go())
    assert all(o.ok for o in seen)
    assert [o.completion_tokens for o in seen] == [40] * 4
