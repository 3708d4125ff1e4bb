"""`bench run` writes plots; `bench report` and `bench compare` on real run folders, with their exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from tests.support.cli_runs import invoke_bench

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run against the mock server process: sequential at 1, semaphore at 2 and 4 (with plots)."""
    out = tmp_path_factory.mktemp("report") / "run"
    result = invoke_bench(
        [
            "run",
            "--strategy",
            "sequential,semaphore",
            "--concurrency",
            "2,4",
            "--calls",
            "12",
            "--latency",
            "fixed:0.02",
            "--out",
            str(out),
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "plots: " in result.stdout
    assert "Traceback" not in result.stderr
    return out


def bench(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def copy_with(run_dir: Path, dest: Path, **scale: float) -> Path:
    """A copy of ``run_dir`` whose summary columns are multiplied by the given factors."""
    shutil.copytree(run_dir, dest)
    summary = pd.read_csv(dest / "summary.csv")
    for column, factor in scale.items():
        summary[column] = summary[column] * factor
    summary.to_csv(dest / "summary.csv", index=False)
    return dest


@pytest.mark.slow
def test_bench_run_writes_the_plots(run_dir: Path) -> None:
    plots = run_dir / "plots"
    names = sorted(p.name for p in plots.iterdir())
    assert names == sorted(
        [
            "main-throughput.png",
            "main-latency.png",
            "main-speedup.png",
            "main-latency-cdf.png",
            "main-where-the-time-went.png",
            "main-timeline-sequential-c1.png",
            "main-timeline-semaphore-c2.png",
            "main-timeline-semaphore-c4.png",
        ]
    )
    for path in plots.iterdir():
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert path.stat().st_size > 1000


@pytest.mark.slow
def test_report_prints_tables_and_rewrites_plots(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    shutil.rmtree(copy / "plots")
    result = bench("report", str(copy))
    assert result.exit_code == 0, result.output
    for text in (
        "scenario main: 12 calls a cell",
        "ideal s",
        "eff",
        "answers per cell",
        "semaphore",
        "plots: 8 PNG",
    ):
        assert text in result.output
    assert len(list((copy / "plots").glob("*.png"))) == 8


@pytest.mark.slow
def test_report_no_plots_only_prints(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "copy", ignore=shutil.ignore_patterns("plots"))
    result = bench("report", str(copy), "--no-plots")
    assert result.exit_code == 0, result.output
    assert not (copy / "plots").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda tmp: tmp / "nope", "no such folder", id="missing"),
        pytest.param(lambda tmp: tmp, "no summary.csv", id="not-a-run"),
    ],
)
def test_report_bad_folder_is_one_line_exit_2(tmp_path: Path, make: object, message: str) -> None:
    result = bench("report", str(make(tmp_path)))  # type: ignore[operator]
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_compare_a_run_with_itself_passes(run_dir: Path) -> None:
    result = bench("compare", str(run_dir), str(run_dir), "--threshold", "0")
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output
    assert "3 cells compared" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("metric", "scale", "threshold", "exit_code"),
    [
        pytest.param("throughput_rps", {"throughput_rps": 0.5}, "10", 1, id="throughput-halved"),
        pytest.param("throughput_rps", {"throughput_rps": 0.95}, "10", 0, id="throughput-within-threshold"),
        pytest.param("throughput_rps", {"throughput_rps": 2.0}, "10", 0, id="throughput-doubled"),
        pytest.param("wall_s", {"wall_s": 1.5}, "10", 1, id="wall-longer"),
        pytest.param("wall_s", {"wall_s": 0.5}, "10", 0, id="wall-shorter"),
        pytest.param("latency_p99_s", {"latency_p99_s": 1.3}, "25", 1, id="p99-beyond-25pct"),
        pytest.param("latency_p99_s", {"latency_p99_s": 1.3}, "40", 0, id="p99-within-40pct"),
    ],
)
def test_compare_exit_code_follows_the_metric_direction(
    run_dir: Path, tmp_path: Path, metric: str, scale: dict[str, float], threshold: str, exit_code: int
) -> None:
    other = copy_with(run_dir, tmp_path / "b", **scale)
    result = bench("compare", str(run_dir), str(other), "--metric", metric, "--threshold", threshold)
    assert result.exit_code == exit_code, result.output
    assert ("REGRESSED" in result.output) is (exit_code == 1)


@pytest.mark.slow
def test_compare_lists_cells_only_on_one_side(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "b"
    shutil.copytree(run_dir, other)
    summary = pd.read_csv(other / "summary.csv")
    summary = summary[summary["concurrency"] != 4]
    summary.loc[summary["strategy"] == "sequential", "scenario"] = "elsewhere"
    summary.to_csv(other / "summary.csv", index=False)
    result = bench("compare", str(run_dir), str(other))
    assert result.exit_code == 0, result.output
    assert "only in A: main / semaphore / C=4" in result.output
    assert "only in A: main / sequential / C=1" in result.output
    assert "only in B: elsewhere / sequential / C=1" in result.output
    assert "1 cells compared" in result.output


@pytest.mark.slow
def test_compare_with_nothing_in_common_cannot_proceed(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "b"
    shutil.copytree(run_dir, other)
    summary = pd.read_csv(other / "summary.csv").assign(scenario="other")
    summary.to_csv(other / "summary.csv", index=False)
    result = bench("compare", str(run_dir), str(other))
    assert result.exit_code == 1
    assert "no cell in common" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("{run}", "{tmp}/missing"), "no such folder", id="missing-b"),
        pytest.param(("{tmp}", "{run}"), "no summary.csv", id="a-not-a-run"),
    ],
)
def test_compare_bad_folder_is_one_line_exit_2(
    run_dir: Path, tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    result = bench("compare", *(a.format(run=run_dir, tmp=tmp_path) for a in args))
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_compare_unknown_metric_is_usage_error(run_dir: Path) -> None:
    result = bench("compare", str(run_dir), str(run_dir), "--metric", "speed")
    assert result.exit_code == 2
    assert "speed" in result.output


@pytest.mark.parametrize(
    ("args", "exit_code", "fragment"),
    [
        pytest.param(
            ["--metric", "throughput_rps:60", "--metric", "wall_s:10"],
            1,
            "regressed[/] on wall_s",
            id="each-metric-its-own-threshold",
        ),
        pytest.param(["--metric", "throughput_rps:60", "--metric", "wall_s:200"], 0, "no regression", id="both-pass"),
        pytest.param(
            ["--metric", "throughput_rps:60", "--check", "errors == 0"], 0, "no regression", id="absolute-bound-holds"
        ),
        pytest.param(
            ["--metric", "throughput_rps:60", "--check", "semaphore: calls > 1000"],
            1,
            "check 'semaphore: calls > 1000' failed",
            id="bound",
        ),
        pytest.param(["--metric", "nope:5"], 2, "unknown metric 'nope'", id="unknown-metric"),
        pytest.param(["--metric", "wall_s:x"], 2, "'x' is not a percentage", id="bad-threshold"),
    ],
)
def test_compare_takes_several_metrics_and_absolute_bounds(
    run_dir: Path, tmp_path: Path, args: list[str], exit_code: int, fragment: str
) -> None:
    other = copy_with(run_dir, tmp_path / "b", throughput_rps=0.5, wall_s=2.0)
    result = bench("compare", str(run_dir), str(other), *args)
    assert result.exit_code == exit_code, result.output
    assert fragment.replace("[/]", "") in result.output.replace("\n", " ")
