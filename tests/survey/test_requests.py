"""Every client sends what the call carries: the filled question, a strict json_schema, sampling, extra_body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.sdk import OpenAIAsyncClient
from bench.clients.wire import request_body
from bench.core.ask import ANSWER_HEADER
from bench.core.calls import build_calls
from bench.core.personas import load_table
from bench.survey.spec import load_workload
from tests.support.fakes import completion_body

CATS = """
system = "You are {first_name}."
question = "Would you adopt a cat, {first_name}?"
choices = ["yes", "no", "unsure"]
temperature = 0.7
seed = 7
extra_body = { top_p = 0.9 }
"""


def cat_call(tmp_path: Path) -> Any:
    (tmp_path / "cats.toml").write_text(CATS)
    (tmp_path / "p.csv").write_text("first_name\nAna\n")
    workload = load_workload(tmp_path / "cats.toml")
    return build_calls(workload.respondents(load_table(tmp_path / "p.csv")), 1, workload.ask())[0]


async def test_the_sdk_sends_the_filled_question_and_a_strict_enum(tmp_path: Path) -> None:
    call = cat_call(tmp_path)
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=completion_body('{"answer": "Unsure"}'))

    endpoint = Endpoint(base_url="http://fake.test/v1", api_key="k")
    client = OpenAIAsyncClient(endpoint, RequestSettings(), 1, transport=httpx2.MockTransport(handler))
    outcome = await client.complete(call)
    await client.aclose()
    assert (outcome.ok, outcome.answer) == (True, "unsure")
    body = json.loads(seen[0].content)
    assert body["messages"][-1] == {"role": "user", "content": "Would you adopt a cat, Ana?"}
    spec = body["response_format"]
    assert spec["type"] == "json_schema"
    assert spec["json_schema"]["strict"] is True
    assert spec["json_schema"]["schema"]["properties"]["answer"]["enum"] == ["yes", "no", "unsure"]
    assert (body["temperature"], body["seed"], body["top_p"], body["max_tokens"]) == (0.7, 7, 0.9, 120)
    assert json.loads(seen[0].headers[ANSWER_HEADER]) == {"field": "answer", "choices": ["yes", "no", "unsure"]}
    # The raw drivers post the same body.
    assert json.loads(request_body(endpoint, RequestSettings(), call)) == body


async def test_an_answer_outside_the_choices_is_an_error_row_never_tallied(tmp_path: Path) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=completion_body('{"answer": "maybe"}'))

    endpoint = Endpoint(base_url="http://fake.test/v1", api_key="k")
    client = OpenAIAsyncClient(endpoint, RequestSettings(), 1, transport=httpx2.MockTransport(handler))
    outcome = await client.complete(cat_call(tmp_path))
    await client.aclose()
    assert (outcome.ok, outcome.answer, outcome.error) == (False, "", 'invalid_choice: "maybe"')
