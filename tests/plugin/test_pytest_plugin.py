"""The pytest plugin as a user meets it: a fresh directory, no conftest, no import of ours."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from bench.mock.handle import MockHandle
from bench.pytest_plugin import RespxHandle
from tests.plugin.user_project import write_project

FAILING_TEST = """
from pathlib import Path


def test_that_fails_with_a_server_running(bench_mock):
    mock = bench_mock()
    Path("mock.pid").write_text(str(mock.server.pid))
    assert False, "a failing test"
"""


def run_user_tests(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "bench.pytest_plugin", "-p", "no:cacheprovider", str(root)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("honour", "passes"), [pytest.param(True, True, id="polite"), pytest.param(False, False, id="rude")]
)
def test_a_users_test_passes_for_a_client_honouring_retry_after_and_fails_for_one_ignoring_it(
    tmp_path: Path, honour: bool, passes: bool
) -> None:
    write_project(tmp_path, honour=honour)
    (tmp_path / "test_failing.py").write_text(FAILING_TEST)
    done = run_user_tests(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    if passes:
        assert "1 failed, 1 passed" in done.stdout  # only the deliberately failing test
    else:
        assert "2 failed" in done.stdout
        assert "assert stats.http_429 <= len(answers)" in done.stdout  # it fails on the server's count
    # The failing test's server was stopped all the same.
    pid = int((tmp_path / "mock.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bench_mock_starts_the_real_server_with_its_options_and_counts(bench_mock) -> None:  # type: ignore[no-untyped-def]
    mock: MockHandle = bench_mock(rpm=60, burst_seconds=2, latency=0.01)
    with httpx.Client() as client:
        codes = [
            client.post(
                f"{mock.base_url}/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            ).status_code
            for _ in range(4)
        ]
    stats = mock.stats()
    assert codes == [200, 200, 429, 429]  # a bucket of 2 requests
    assert (stats.received, stats.completed, stats.http_429, stats.retries_seen) == (4, 4, 2, 0)
    assert stats.peak_in_flight == 1
    mock.reset()
    assert mock.stats().received == 0
    with pytest.raises(AttributeError):
        stats.received = 0  # type: ignore[misc]  # frozen


async def test_openai_respx_gives_the_sdk_openai_faithful_429s_in_process(openai_respx) -> None:  # type: ignore[no-untyped-def]
    fake: RespxHandle = openai_respx(rpm=60, burst_seconds=1)
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert first.choices[0].message.content == "ok"
    with pytest.raises(openai.RateLimitError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    await client.close()
    headers = refused.value.response.headers
    assert int(headers["retry-after-ms"]) > 0
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert refused.value.code == "rate_limit_exceeded"
    stats = fake.stats()
    assert (stats.received, stats.http_429, stats.admitted) == (2, 1, 1)


def test_openai_respx_serves_plain_httpx_clients_too(openai_respx) -> None:  # type: ignore[no-untyped-def]
    fake: RespxHandle = openai_respx(rate_limit_rate=1.0)
    with httpx.Client() as client:
        response = client.post(
            f"{fake.base_url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert fake.stats().http_429 == 1


AZURE_TEST = """
import openai
import pytest


def test_a_naive_client_sees_azures_429_as_azure_sends_it(bench_mock):
    mock = bench_mock(profile="azure-openai", rpm=60)  # Azure's dialect, one request a second
    client = openai.OpenAI(base_url=mock.base_url, api_key="test", max_retries=0)
    with client, pytest.raises(openai.RateLimitError) as refused:
        for _ in range(3):  # no waiting: the second call in the same second is refused
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    response = refused.value.response
    assert response.json()["error"]["code"] == "429"
    assert "Please retry after 1 seconds" in response.json()["error"]["message"]
    assert response.headers["retry-after"] == "1"
    assert int(response.headers["retry-after-ms"]) <= 1000
    assert "x-ratelimit-remaining-requests" in response.headers
    assert "x-ratelimit-limit-requests" not in response.headers  # Azure states only what remains
    assert mock.stats().http_429 == 1
"""


@pytest.mark.slow
def test_bench_mock_with_a_profile_shows_a_fresh_projects_client_azures_429s(tmp_path: Path) -> None:
    (tmp_path / "test_azure.py").write_text(AZURE_TEST)
    done = run_user_tests(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
