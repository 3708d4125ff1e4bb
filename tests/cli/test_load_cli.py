"""``bench run`` load-testing flags: --stream, --rate, --max-in-flight, the mock's token timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli_runs import error_lines, invoke_bench, read_rows


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--strategy", "poisson"], "poisson needs --rate", id="open-loop-without-rate"),
        pytest.param(["--strategy", "constant", "--rate", "0"], "must be greater than 0", id="zero-rate"),
        pytest.param(["--strategy", "semaphore", "--rate", "5"], "applies only to open-loop", id="rate-closed-loop"),
        pytest.param(
            ["--endpoint", "http://127.0.0.1:9/v1", "--mock-ttft", "fixed:0.1"],
            "apply only to --endpoint mock",
            id="ttft",
        ),
    ],
)
def test_bad_load_flags_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = invoke_bench(["run", "--calls", "5", *args])
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert says in line


@pytest.mark.slow
def test_a_streamed_poisson_sweep_writes_one_cell_per_rate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--strategy", "poisson", "--rate", "50,100", "--calls", "40", "--stream", "--client", "aiohttp"]
    timing = ["--mock-ttft", "fixed:0.05", "--mock-itl", "fixed:0.005", "--mock-output-tokens", "fixed:10"]
    done = invoke_bench([*args, *timing, "--no-plots", "-q", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert sorted({r["scenario"] for r in rows}) == ["rate-100", "rate-50"]
    assert len(rows) == 80
    assert {r["output_tokens"] for r in rows} == {"10"}
    ttfts = sorted(float(r["ttft_s"]) for r in rows)
    assert ttfts[0] >= 0.05 - 0.002, ttfts[:3]  # the server's first token, whatever the client's clock adds
    assert all(float(r["start_s"]) >= float(r["scheduled_s"]) - 0.001 for r in rows)
