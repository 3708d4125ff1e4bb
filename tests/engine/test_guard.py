"""The paid-endpoint guard (loopback detection, prices, estimate, reachability) and resume's plan checks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.core.calls import Persona, build_calls
from bench.engine.guard import (
    PRICES,
    GuardError,
    Price,
    estimate,
    is_local,
    load_price_table,
    preflight,
    price_for,
    resolve_price,
)
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.resume import ResumeError, check_same_plan, missing_calls, plan_digest, plan_keys


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        pytest.param("mock", True, id="mock"),
        pytest.param("http://127.0.0.1:8000/v1", True, id="ipv4-loopback"),
        pytest.param("http://127.8.9.10/v1", True, id="ipv4-loopback-range"),
        pytest.param("http://[::1]:8000/v1", True, id="ipv6-loopback"),
        pytest.param("http://localhost:11434/v1", True, id="localhost"),
        pytest.param("http://LOCALHOST/v1", True, id="localhost-upper"),
        pytest.param("https://api.openai.com/v1", False, id="openai"),
        pytest.param("http://10.0.0.5:8000/v1", False, id="lan"),
        pytest.param("http://127.0.0.1.example.com/v1", False, id="lookalike-name"),
        pytest.param("http://localhost.evil.com/v1", False, id="localhost-prefix"),
    ],
)
def test_is_local(endpoint: str, local: bool) -> None:
    assert is_local(endpoint) is local


def test_price_for_exact_then_longest_prefix() -> None:
    assert price_for("gpt-4o-mini", PRICES) == PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-mini-2024-07-18", PRICES) == PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", PRICES) == PRICES["gpt-4o"]
    assert price_for("llama-3-70b", PRICES) is None


def test_price_tables_from_json_and_csv(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"my-model": {"input": 1.5, "output": 6}}')
    (tmp_path / "p.csv").write_text("model,input_per_1m,output_per_1m\n\nmy-model,2,8\n")
    assert load_price_table(tmp_path / "p.json") == {"my-model": Price(input_per_m=1.5, output_per_m=6.0)}
    assert load_price_table(tmp_path / "p.csv") == {"my-model": Price(input_per_m=2.0, output_per_m=8.0)}
    table = tmp_path / "p.csv"
    assert resolve_price("my-model", table, None, None) == Price(input_per_m=2.0, output_per_m=8.0)
    assert resolve_price("gpt-4o", tmp_path / "p.csv", None, None) == PRICES["gpt-4o"]  # built-ins stay
    assert resolve_price("gpt-4o", None, 1.0, 2.0) == Price(input_per_m=1.0, output_per_m=2.0)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        pytest.param("p.json", '{"m": {"input": 1}}', "needs 'input' and 'output'", id="json-missing-output"),
        pytest.param("p.json", '{"m": {"input": -1, "output": 1}}', "must be 0 or more", id="json-negative"),
        pytest.param("p.json", "[1, 2]", "expected an object", id="json-list"),
        pytest.param("p.json", '{"m":\n', "p.json:2: not valid JSON", id="json-broken"),
        pytest.param("p.csv", "m,1\n", "p.csv:1: expected model,input_per_1m,output_per_1m", id="csv-short"),
        pytest.param("p.csv", "model,a,b\nm,1,nan\n", "p.csv:2: price must be 0 or more", id="csv-nan"),
    ],
)
def test_bad_price_tables_name_the_place(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(GuardError, match=message.replace("(", r"\(")):
        load_price_table(tmp_path / name)


PEOPLE = [
    Persona(id=i, name="A", age=30, gender="f", occupation="x", city="c", state="s", education="e") for i in range(5)
]


def test_estimate_bounds_the_cost() -> None:
    calls = build_calls(PEOPLE, repeats=2)
    guess = estimate(calls, "gpt-4o-mini", 120, PRICES["gpt-4o-mini"])
    assert guess.calls == 10
    assert guess.max_completion_tokens == 1200
    assert guess.prompt_tokens > 10 * 40
    cost = guess.cost_usd
    assert cost is not None
    assert cost == pytest.approx((guess.prompt_tokens * 0.15 + 1200 * 0.60) / 1e6)
    assert "10 calls to model gpt-4o-mini" in guess.describe()
    assert "no price known for x-model" in estimate(calls, "x-model", 120, None).describe()


def test_preflight_says_why_it_cannot_connect() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert preflight(f"http://127.0.0.1:{port}/v1") is None
    reason = preflight(f"http://127.0.0.1:{port}/v1", timeout_s=2)
    assert reason == f"cannot reach http://127.0.0.1:{port}/v1: connection refused (127.0.0.1:{port})"
    assert preflight("http:///v1") == "'http:///v1' has no host"


def plan(repeats: int = 1, levels: tuple[int, ...] = (2, 4)) -> RunPlan:
    calls = build_calls(PEOPLE, repeats=repeats)
    return RunPlan(label="t", cells=tuple(matrix_cells(calls, ["semaphore", "threads"], list(levels))))


def test_plan_digest_is_stable_and_sees_any_change() -> None:
    assert plan_digest(plan()) == plan_digest(plan())
    assert plan_digest(plan()) != plan_digest(plan(repeats=2))
    assert plan_digest(plan()) != plan_digest(plan(levels=(2, 5)))


def test_missing_calls_and_foreign_rows() -> None:
    full = plan()
    keys = plan_keys(full)
    assert len(keys) == len(set(keys)) == 4 * 5
    done = frozenset(keys[:7])
    assert len(missing_calls(full, done)) == 13
    check_same_plan(full, plan_digest(full), done, Path("run"))
    with pytest.raises(ResumeError, match="outside this run's plan"):
        check_same_plan(full, plan_digest(full), done | {"main/gather/5/p00001-r000"}, Path("run"))
    with pytest.raises(ResumeError, match="differ from the ones that ran"):
        check_same_plan(full, plan_digest(plan(repeats=2)), done, Path("run"))


def test_batch_calls_are_estimated_at_the_batch_discount() -> None:
    calls = build_calls(PEOPLE, repeats=2)
    full = estimate(calls, "gpt-4o-mini", 120, PRICES["gpt-4o-mini"])
    half = estimate(calls, "gpt-4o-mini", 120, PRICES["gpt-4o-mini"], batch=calls, batch_discount=0.5)
    assert full.cost_usd is not None
    assert half.cost_usd == pytest.approx(full.cost_usd / 2)
    assert "10 batch calls at 0.5×" in half.describe()


def test_the_paid_endpoint_guard_prices_batch_api_cells_at_the_discount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.engine.gate import PaidRun
    from bench.engine.options import RunOptions
    from bench.engine.session import RunHooks, run_benchmark

    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "guard-test-0123456789")
    asked: list[PaidRun] = []

    class Refused(Exception):
        pass

    def confirm(paid: PaidRun) -> None:
        asked.append(paid)
        raise Refused

    def guess(strategies: list[str]) -> PaidRun:
        options = RunOptions.from_params(
            {"strategies": strategies, "calls": 10, "endpoint": "https://api.example.com/v1"}
            | {"out": tmp_path / "-".join(strategies), "quiet": True, "no_plots": True}
        )
        with pytest.raises(Refused):
            run_benchmark(options, RunHooks(confirm_paid=confirm))
        return asked[-1]

    live, both = guess(["semaphore"]), guess(["semaphore", "batch_api"])
    assert (both.calls, both.estimate.batch_calls) == (20, 10)
    assert live.estimate.cost_usd is not None
    assert both.estimate.cost_usd == pytest.approx(1.5 * live.estimate.cost_usd)  # not 2×: the batch half at 0.5
