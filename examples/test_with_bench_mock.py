"""An example CI test for a project that calls an OpenAI-compatible API.

`bench_mock` comes from llm-concurrency-bench's pytest plugin: installing the package registers it
(no import, no conftest). It starts the real mock server in its own process and returns a handle with
`.base_url`, `.stats()` (the server's own counters) and `.reset()`; servers stop after each test.

    python -m pytest -q examples/test_with_bench_mock.py -n 0    # in a checkout of this repository
"""

from __future__ import annotations

import time

import httpx


def ask(client: httpx.Client, base_url: str, prompt: str) -> dict:
    """Your client: one chat completion, retried on 429 after waiting as long as the server says."""
    for _ in range(100):
        response = client.post(
            f"{base_url}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
            headers={"Authorization": "Bearer test"},
        )
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        time.sleep(int(response.headers["retry-after-ms"]) / 1000)
    raise RuntimeError("gave up after 100 refusals")


def test_every_call_is_answered(bench_mock):
    mock = bench_mock()  # no latency, no limit: the mock answers at once
    with httpx.Client() as client:
        answers = [ask(client, mock.base_url, f"question {i}") for i in range(5)]
    assert all(a["choices"][0]["message"]["content"] for a in answers)
    assert mock.stats().received == 5


def test_the_client_waits_as_told_under_a_rate_limit(bench_mock):
    mock = bench_mock(rpm=600, burst_seconds=1)  # 10 a second, a bucket of 10
    with httpx.Client() as client:
        for i in range(15):
            ask(client, mock.base_url, f"question {i}")
    stats = mock.stats()
    assert stats.admitted == 15  # the server admitted each call once (a 429 is answered, not admitted)
    assert stats.http_429 <= 15  # waiting for retry-after: at most one refusal per call
