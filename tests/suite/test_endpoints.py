"""Several endpoints in a suite: ``endpoints = [...]`` with bench run's keys, each paced at its own limit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.summary import read_calls
from bench.suite.config import SuiteError
from tests.support.servers import MockServerFactory
from tests.support.suites import plan_text

EXPERIMENT = """
[[experiment]]
strategies = ["rate_limited"]
concurrency = [8]
calls = 120
"""


def test_endpoints_take_specs_or_tables_with_the_same_keys() -> None:
    text = """
    [suite]
    endpoints = ["http://127.0.0.1:9001/v1,key_env=KEY_A,rpm=600,label=a",
                 { url = "http://127.0.0.1:9002/v1", key_env = "KEY_B", rpm = 1800 }]
    """
    client = plan_text(text + EXPERIMENT).options.client  # rate_limited: every endpoint states rpm
    assert client.endpoint == "http://127.0.0.1:9001/v1"
    assert [(s.label, s.key_env, s.rpm) for s in client.specs()] == [
        ("a", "KEY_A", 600.0),
        ("127.0.0.1:9002", "KEY_B", 1800.0),
    ]


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        pytest.param('endpoint = "http://a/v1"\nendpoints = ["http://b/v1"]', "not both", id="both"),
        pytest.param('endpoints = ["http://a/v1,colour=red"]', "suite.endpoint: 'colour=red'", id="bad-key"),
        pytest.param("endpoints = [{ rpm = 5 }]", "a table needs url", id="no-url"),
        pytest.param('endpoints = ["mock", "http://b/v1"]', "'mock' cannot be one of several", id="mock"),
        pytest.param('endpoints = ["http://a/v1", "http://b/v1,rpm=5"]', "needs --rpm and/or --tpm", id="unpaced"),
    ],
)
def test_bad_endpoints_are_one_line_naming_the_key(suite: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        plan_text(f"[suite]\n{suite}\n{EXPERIMENT}")


@pytest.mark.slow
def test_a_suite_over_two_endpoints_paces_each_at_its_own_limit(
    tmp_path: Path, mock_server_factory: MockServerFactory
) -> None:
    a = mock_server_factory(latency="fixed:0.02", rpm=600, api_key="key-for-a-1234")
    b = mock_server_factory(latency="fixed:0.02", rpm=1800, api_key="key-for-b-5678")
    path = tmp_path / "two.toml"
    path.write_text(
        f"""
        [suite]
        endpoints = ["{a.base_url},key_env=KEY_A,rpm=600,label=a",
                     {{ url = "{b.base_url}", key_env = "KEY_B", rpm = 1800, label = "b" }}]
        {EXPERIMENT}""",
        encoding="utf-8",
    )
    env = {"KEY_A": "key-for-a-1234", "KEY_B": "key-for-b-5678"}
    done = CliRunner().invoke(cli, ["suite", str(path), "--out", str(tmp_path / "run"), "-q"], env=env)

    assert done.exit_code == 0, done.output
    assert (a.stats().http_429, b.stats().http_429) == (0, 0)
    calls = read_calls(tmp_path / "run" / "calls.csv")
    assert calls["status"].eq("ok").all()
    shares = Counter(calls["endpoint"])
    assert shares == {"a": a.stats().admitted, "b": b.stats().admitted}
    assert sum(shares.values()) == 120
    assert shares["b"] > 2 * shares["a"]  # 3 : 1, as their limits
    for file in (tmp_path / "run").iterdir():
        text = file.read_text(encoding="utf-8", errors="replace")
        assert "key-for-a" not in text
        assert "key-for-b" not in text
