"""A user's project as the README shows it: their own client, tested with ``bench_mock`` (no import of ours)."""

from __future__ import annotations

CLIENT = '''
import time

import httpx


def ask(client: httpx.Client, base_url: str, prompt: str, honour_retry_after: bool = True) -> dict:
    """Our client: one chat completion, retried on 429 (waiting as the server says, if we are polite)."""
    for _ in range(200):
        response = client.post(
            f"{base_url}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
            headers={"Authorization": "Bearer test"},
        )
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        if honour_retry_after:
            time.sleep(int(response.headers["retry-after-ms"]) / 1000)
    raise RuntimeError("gave up")
'''

TEST = """
import httpx

from my_client import ask

HONOUR = {honour}


def test_our_client_waits_as_told_and_stays_under_the_limit(bench_mock):
    mock = bench_mock(rpm=600, burst_seconds=1)  # 10 a second, a bucket of 10
    with httpx.Client() as client:
        answers = [ask(client, mock.base_url, f"question {{i}}", HONOUR) for i in range(20)]
    stats = mock.stats()
    assert all(a["choices"][0]["message"]["content"] for a in answers)
    assert stats.completed == stats.received
    # Waiting for retry-after means at most one refusal per call.
    assert stats.http_429 <= len(answers), f"{{stats.http_429}} 429s for {{len(answers)}} calls"
"""


def write_project(root, *, honour: bool):  # type: ignore[no-untyped-def]
    """Write the user's client and test into ``root`` (no conftest) and return the test file."""
    (root / "my_client.py").write_text(CLIENT)
    test = root / "test_my_client.py"
    test.write_text(TEST.format(honour=honour))
    return test
