"""A server that refuses fields it does not know (``transformers serve``: 422 "Unexpected fields in the
request: {'ignore_eos'}"): found once, said in one line, the run goes on without the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli_runs import invoke_bench, read_rows
from tests.support.hostile import HostileServer

N, C = 12, 4


def synthetic_run(server: HostileServer, out: Path, *extra: str) -> tuple[int, str]:
    args = ["run", "--no-plots", "-q", "--endpoint", server.base_url, "--calls", str(N), "--concurrency", str(C)]
    load = ["--prompt-tokens", "20", "--output-tokens", "8", "--max-retries", "0", "--timeout", "5"]
    done = invoke_bench([*args, *load, "--out", str(out), *extra])
    assert "Traceback" not in done.stdout + done.stderr
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        pytest.param(422, [], id="sdk-422"),
        pytest.param(400, [], id="sdk-400"),
        pytest.param(422, ["--client", "aiohttp"], id="aiohttp-422"),
        pytest.param(422, ["--strategy", "threads"], id="threads-422"),
    ],
)
def test_a_refused_ignore_eos_is_dropped_for_the_rest_of_the_run(tmp_path: Path, status: int, extra: list[str]) -> None:
    with HostileServer("strict", status=status) as server:
        code, stderr = synthetic_run(server, tmp_path / "run", *extra)
    assert code == 0, stderr
    [warning] = [line for line in stderr.splitlines() if line.strip()]
    assert f"the endpoint refused the field ignore_eos (HTTP {status})" in warning
    assert "output lengths are not forced" in warning
    rows = read_rows(tmp_path / "run")
    assert len(rows) == N  # one row per call
    assert {r["status"] for r in rows} == {"ok"}
    bodies = [json.loads(body) for body in server.bodies]
    assert 1 <= server.refused <= C  # only the calls sent before the first answer carried it
    assert len(bodies) == N + server.refused  # each refused call sent again once, without the field
    assert sum("ignore_eos" not in body for body in bodies) == N
    assert sorted(int(r["attempts"]) for r in rows) == [1] * (N - server.refused) + [2] * server.refused
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert config["refused_fields"] == ["ignore_eos"]
    assert config["output_lengths_forced"] is False
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["config"]["output_lengths_forced"] is False


def test_a_refusal_for_another_reason_is_probed_once_and_recorded(tmp_path: Path) -> None:
    with HostileServer("strict", refuse_all=True) as server:
        code, stderr = synthetic_run(server, tmp_path / "run", "--concurrency", "1")
    assert code == 1  # nothing succeeded
    assert "refused the field" not in stderr
    rows = read_rows(tmp_path / "run")
    assert len(rows) == N
    assert {r["http_status"] for r in rows} == {"422"}
    assert server.requests == N + 1  # the first call was sent again without ignore_eos, once; no other
    assert "refused_fields" not in json.loads((tmp_path / "run" / "run.json").read_text())["config"]
