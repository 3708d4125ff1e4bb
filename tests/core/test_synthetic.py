"""Synthetic-length load: distinct prompts of about N tokens, no JSON mode, max_tokens M with ignore_eos."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.clients.wire import Reply, outcome_from_reply, request_body
from bench.core.calls import Call
from bench.core.synthetic import synthetic_ask, synthetic_calls
from bench.engine.options import RunOptions
from bench.engine.program import plan_for
from bench.mock import MockServer

ENDPOINT = Endpoint(base_url="http://x.test/v1", api_key="k")


def test_prompts_are_about_n_tokens_and_share_no_prefix() -> None:
    calls = synthetic_calls(50, 200, synthetic_ask(None))
    texts = [c.messages[0]["content"] for c in calls]
    assert len({t.split(":")[0] for t in texts}) == 50  # each starts with its own number
    assert all(195 <= len(t.split()) <= 205 for t in texts)  # ~1 token a word
    assert len({c.call_id for c in calls}) == 50


def test_a_synthetic_run_asks_for_m_tokens_without_a_response_format() -> None:
    plan = plan_for(RunOptions.from_params({"prompt_tokens": 100, "output_tokens": 64, "calls": 3}))
    call = plan.cells[0].calls[0]
    body = json.loads(request_body(ENDPOINT, RequestSettings(), call))
    assert body["max_tokens"] == 64
    assert body["ignore_eos"] is True
    assert "response_format" not in body
    assert plan.label != "default"
    plain = plan_for(RunOptions.from_params({"output_tokens": 64, "no_ignore_eos": True, "calls": 1}))
    assert "ignore_eos" not in json.loads(request_body(ENDPOINT, RequestSettings(), plain.cells[0].calls[0]))


def test_without_an_answer_to_read_any_completed_answer_is_a_success() -> None:
    ask = synthetic_ask(16)
    assert outcome_from_reply(Reply(200, {}, _completion("lorem ipsum")), 1, 0, "", ask).ok
    assert not outcome_from_reply(Reply(200, {}, _completion("lorem ipsum")), 1, 0, "").ok  # the election asks a vote


def _completion(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    return json.dumps({"choices": [{"index": 0, "message": message}], "usage": {"completion_tokens": 2}}).encode()


@pytest.mark.parametrize("client", ["openai", "aiohttp"])
def test_the_mock_honours_ignore_eos_with_exactly_max_tokens(mock_server: MockServer, client: str) -> None:
    server = mock_server  # fixed 0.05 s, shared by the session
    settings = RequestSettings(max_tokens=40)
    ask = synthetic_ask(40)

    async def go() -> list[Outcome]:
        driver = CLIENTS[client].make(Endpoint(base_url=server.base_url, api_key="k"), settings, 4)
        try:
            return [await driver.complete(c) for c in synthetic_calls(4, 50, ask)]
        finally:
            await driver.aclose()

    seen = asyncio.run(go())
    assert all(o.ok for o in seen)
    assert [o.completion_tokens for o in seen] == [40] * 4


def _prefixes(cell_calls: Sequence[Call]) -> set[str]:
    texts = [c.messages[0]["content"] for c in cell_calls]
    return {t.removeprefix("Request ")[:32] for t in texts}


def _plan(seed: int) -> list[tuple[Sequence[Call], list[int]]]:
    options = RunOptions.from_params({"prompt_tokens": 100, "calls": 6, "concurrency": "1,4", "seed": seed})
    cells = plan_for(options).cells
    return [(cell.calls, [len(c.messages[0]["content"]) for c in cell.calls]) for cell in cells]


def test_two_cells_and_two_seeds_send_no_prompt_prefix_in_common_at_the_same_lengths() -> None:
    (a1, len_a1), (a2, len_a2) = _plan(seed=1)
    (b1, len_b1), _ = _plan(seed=2)
    assert _prefixes(a1).isdisjoint(_prefixes(a2))  # two cells of one run
    assert _prefixes(a1).isdisjoint(_prefixes(b1))  # one cell of two runs
    assert len(_prefixes(a1)) == 6  # and no two calls of a cell
    assert len_a1 == len_a2 == len_b1  # the same prompt lengths, call by call
    assert all(95 <= len(c.messages[0]["content"].split()) <= 105 for c in a1)
    rebuilt, _ = _plan(seed=1)[0]
    same = [(c.call_id, c.messages) for c in rebuilt] == [(c.call_id, c.messages) for c in a1]
    assert same  # the same seed rebuilds the same prompts: --resume matches them
    assert [c.call_id for c in a1] == [c.call_id for c in a2]
