"""Several endpoints in one run: specs parsed, calls routed by stated limits, rows say which answered."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from bench.clients.pool import EndpointSpecError, Router, label_all, parse_endpoint_spec
from tests.support.cli_runs import invoke_bench, read_rows
from tests.support.servers import MockServerFactory


def test_a_spec_carries_its_key_variable_limits_and_label() -> None:
    spec = parse_endpoint_spec("https://a.example/v1,key_env=KEY_A,rpm=500")
    assert (spec.url, spec.key_env, spec.rpm, spec.tpm, spec.label) == (
        "https://a.example/v1",
        "KEY_A",
        500.0,
        None,
        "a.example",
    )
    assert parse_endpoint_spec("mock").label == "mock"
    twins = label_all([parse_endpoint_spec("http://h:1/v1"), parse_endpoint_spec("http://h:1/v1")])
    assert [s.label for s in twins] == ["h:1", "h:1#2"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("api.example.com", "neither 'mock' nor an http(s) URL", id="not-url"),
        pytest.param("http://a/v1,colour=red", "expected one of", id="unknown-key"),
        pytest.param("http://a/v1,rpm=lots", "is not a number", id="rpm-not-number"),
        pytest.param("http://a/v1,rpm=0", "must be positive", id="rpm-zero"),
    ],
)
def test_bad_specs_are_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(EndpointSpecError, match=re.escape(says)):
        parse_endpoint_spec(text)


@pytest.mark.parametrize(
    ("weights", "shares"),
    [
        pytest.param([500, 3000], [100, 600], id="by-rpm"),
        pytest.param([1, 1, 1], [234, 233, 233], id="round-robin"),
    ],
)
def test_the_router_gives_each_endpoint_its_share(weights: list[float], shares: list[int]) -> None:
    router = Router(weights)
    picks = [router.next() for _ in range(sum(shares))]
    assert [picks.count(i) for i in range(len(weights))] == shares
    first = [picks[:70].count(i) for i in range(len(weights))]  # interleaved, not one block after another
    assert all(abs(got - 70 * w / sum(weights)) <= 1 for got, w in zip(first, weights, strict=True))


@pytest.mark.slow
def test_two_endpoints_each_receive_their_share_and_rows_say_which_answered(
    tmp_path: Path, mock_server_factory: MockServerFactory
) -> None:
    a = mock_server_factory(latency="zero", api_key="key-for-a-1234")
    b = mock_server_factory(latency="zero", api_key="key-for-b-5678")
    args = ["run", "--strategy", "semaphore", "--calls", "80", "--concurrency", "8", "--no-plots", "-q"]
    args += ["--endpoint", f"{a.base_url},key_env=KEY_A,rpm=100,label=a"]
    args += ["--endpoint", f"{b.base_url},key_env=KEY_B,rpm=300,label=b", "--out", str(tmp_path / "run")]
    done = invoke_bench(args, env={"KEY_A": "key-for-a-1234", "KEY_B": "key-for-b-5678"})

    assert done.returncode == 0, done.stderr
    assert (a.stats().received, b.stats().received) == (20, 60)  # 1 : 3, no 401 retried elsewhere
    rows = read_rows(tmp_path / "run")
    assert Counter(r["endpoint"] for r in rows) == {"a": 20, "b": 60}
    assert all(r["status"] == "ok" for r in rows)
    with (tmp_path / "run" / "endpoints.csv").open(newline="") as handle:
        assert {r["endpoint"]: int(r["calls"]) for r in csv.DictReader(handle)} == {"a": 20, "b": 60}
    for path in (tmp_path / "run").iterdir():
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "key-for-a" not in text
        assert "key-for-b" not in text
