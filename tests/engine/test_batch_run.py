"""``bench run --strategy batch_api`` against a server with files and batches: the issue's done-when."""

from __future__ import annotations

import csv
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.engine.errors import OptionsError
from bench.engine.options import RunOptions
from tests.support.cli_runs import invoke_bench, read_rows, start_bench
from tests.support.servers import MockServerFactory

N = 120


def tally(run_dir: Path) -> Counter[str]:
    with (run_dir / "tally.csv").open(newline="") as handle:
        return Counter({row["answer"]: int(row["count"]) for row in csv.DictReader(handle)})


def run_args(url: str, strategy: str, out: Path) -> list[str]:
    return ["run", "--strategy", strategy, "--calls", str(N), "--endpoint", url, "--out", str(out), "--no-plots", "-q"]


@pytest.mark.slow
def test_batch_api_submits_every_call_sends_no_chat_and_tallies_as_semaphore(
    tmp_path: Path, mock_server_factory: MockServerFactory
) -> None:
    server = mock_server_factory(latency="fixed:0.02", batch_delay="fixed:0.5", malformed_rate=0.05)
    batch = invoke_bench(run_args(server.base_url, "batch_api", tmp_path / "batch"))
    assert batch.returncode == 0, batch.stderr
    stats = server.stats()
    assert stats.received == 0  # not one chat completion
    assert stats.batches is not None
    assert stats.batches["lines_submitted"] == N

    live = invoke_bench(run_args(server.base_url, "semaphore", tmp_path / "live"))
    assert live.returncode == 0, live.stderr
    rows = read_rows(tmp_path / "batch")
    assert len(rows) == N
    assert len({r["call_id"] for r in rows}) == N
    assert sum(r["status"] == "ok" for r in rows) == sum(r["status"] == "ok" for r in read_rows(tmp_path / "live"))
    assert tally(tmp_path / "batch") == tally(tmp_path / "live")
    cost_batch = sum(float(r["cost_usd"]) for r in rows)
    cost_live = sum(float(r["cost_usd"]) for r in read_rows(tmp_path / "live"))
    assert cost_batch == pytest.approx(cost_live / 2)  # same tokens, the Batch API's half price


@pytest.mark.slow
def test_an_interrupted_batch_run_resumes_without_a_second_batch(
    tmp_path: Path, mock_server_factory: MockServerFactory
) -> None:
    server = mock_server_factory(latency="zero", batch_delay="fixed:4")
    out = tmp_path / "run"
    proc = start_bench(run_args(server.base_url, "batch_api", out), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (out / "batches.jsonl").exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert read_rows(out) == []
    assert "re-attaches" in stderr
    batches = server.stats().batches
    assert batches is not None
    assert batches["batches_created"] == 1

    resumed = invoke_bench(["run", "--resume", str(out), "--no-plots", "-q"])
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(out)
    assert len(rows) == N
    assert all(r["status"] == "ok" for r in rows)
    assert server.stats().batches == {
        "files_uploaded": 1,
        "batches_created": 1,
        "lines_submitted": N,
        "batches_cancelled": 0,
    }
    # From the first submission (before the interrupt) to the results; latency counts from the re-attach only,
    # which came after the interrupt and a new start (well over 0.1 s): shorter than that span, whatever the
    # polling adds at the end.
    assert min(float(r["end_s"]) - float(r["scheduled_s"]) for r in rows) >= 4.0
    assert all(float(r["latency_s"]) < float(r["end_s"]) - float(r["scheduled_s"]) - 0.1 for r in rows)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        pytest.param(
            {"strategies": ["batch_api"], "backend": "ray"}, "batch_api runs on --backend local", id="batch-ray"
        ),
        pytest.param(
            {"strategies": ["batch_api"], "endpoint": ["http://a/v1", "http://b/v1"]},
            "batch_api sends to one endpoint only",
            id="batch-pool",
        ),
        pytest.param({"endpoint": "http://a/v1", "mock_batch_delay": "fixed:1"}, "only to --endpoint mock", id="delay"),
    ],
)
def test_what_the_batch_api_and_endpoint_pools_cannot_combine_with_is_refused(
    params: dict[str, Any], says: str
) -> None:
    with pytest.raises(OptionsError, match=says):
        RunOptions.from_params(params)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("response_format", "question", "choices"),
    [
        pytest.param(
            "json_object",
            'Cat or dog, {name}? Answer only with a JSON object: {{"pet": "cat" or "dog", "why": "<a sentence>"}}',
            ["cat", "dog"],
            id="json_object",
        ),
        pytest.param(
            "text", 'Tea or coffee, {name}? Say "tea", "coffee" or "neither".', ["tea", "coffee", "neither"], id="text"
        ),
    ],
)
def test_batch_lines_get_the_choices_their_question_names_as_live_calls_do(
    tmp_path: Path, response_format: str, question: str, choices: list[str]
) -> None:
    import json

    import bench

    workload = tmp_path / "w.toml"
    workload.write_text(
        f"question = {json.dumps(question)}\nchoices = {json.dumps(choices)}\n"
        f'answer_field = "pet"\nresponse_format = "{response_format}"\n',
        encoding="utf-8",
    )
    results = bench.run(
        strategy=["semaphore", "batch_api"],
        calls=40,
        concurrency=8,
        workload=workload,
        latency="fixed:0.01",
        mock_batch_delay="fixed:0.1",
        out=tmp_path / "run",
        no_plots=True,
    )
    calls = results.calls
    assert len(calls) == 80
    assert calls["status"].eq("ok").all()  # not the vote shape, which these choices would refuse
    by_strategy = {name: Counter(group["answer"]) for name, group in calls.groupby("strategy")}
    assert by_strategy["batch_api"] == by_strategy["semaphore"]
    assert set(by_strategy["batch_api"]) == set(choices)  # every choice drawn, not one fallback answer
