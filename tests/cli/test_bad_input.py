"""Bad input: one ``error:`` line, a non-zero exit (2 usage, 1 cannot proceed), never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from tests.support.cli_runs import bench_env, error_lines, read_rows, run_bench
from tests.support.servers import MockServerFactory

NO_KEY = {"OPENAI_API_KEY": None}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Broken inputs: personas with a bad line, a file where a folder should be, a finished run."""
    good = '{"id":%d,"name":"A","age":30,"gender":"f","occupation":"x","city":"c","state":"s","education":"e"}'  # noqa: E501
    (tmp_path / "bad_json.jsonl").write_text(good % 1 + "\n{not json\n")
    (tmp_path / "no_age.jsonl").write_text(good % 1 + "\n" + good % 2 + "\n" + '{"id":3,"name":"B"}\n')
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text("{}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text('{"config": \n')
    (tmp_path / "prices.csv").write_text("model,input_per_1m,output_per_1m\ngpt-4o-mini,0.15,cheap\n")
    return tmp_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, ["run", "--no-plots", "-q", *args], env={**NO_KEY, **(env or {})})


def assert_one_line_error(result: Result, code: int, fragment: str) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def case(name: str, code: int, fragment: str, *args: str) -> object:
    return pytest.param(list(args), code, fragment, id=name)


LOCAL_URL = "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        case("unknown-strategy", 2, "unknown strategy 'nope'", "--strategy", "nope"),
        case("concurrency-0", 2, "must be at least 1, got 0", "--concurrency", "0"),
        case("concurrency-negative", 2, "must be at least 1, got -4", "--concurrency", "-4"),
        case("concurrency-not-a-number", 2, "'ten' is not a whole number", "--concurrency", "ten"),
        case("concurrency-empty-part", 2, "'' is not a whole number", "--concurrency", "10,,20"),
        case("calls-0", 2, "must be at least 1, got 0", "--calls", "0"),
        case("calls-not-a-number", 2, "'many' is not a number", "--calls", "many"),
        case("calls-and-personas", 2, "either --calls or --personas", "--calls", "5", "--personas", "3"),
        case("too-many-personas", 2, "exceeds the 5000 personas", "--personas", "999999"),
        case("personas-file-missing", 2, "cannot read personas file", "--personas-file", "{tmp}/nope.jsonl"),
        case(
            "personas-file-bad-json", 2, "bad_json.jsonl:2: not valid JSON", "--personas-file", "{tmp}/bad_json.jsonl"
        ),
        case(
            "personas-file-row-lacks-a-template-column",
            2,
            "no_age.jsonl: row 3: no value for column 'age' the templates use",
            "--personas-file",
            "{tmp}/no_age.jsonl",
            "--question",
            "At {age}?",
            "--choices",
            "yes,no",
        ),
        case("personas-file-empty", 2, "no personas in file", "--personas-file", "{tmp}/empty.jsonl"),
        case("latency-spec-bad", 2, "soon", "--latency", "soon", "--calls", "3"),
        case("latency-negative", 2, "-1", "--latency", "fixed:-1", "--calls", "3"),
        case("rpm-0", 2, "must be greater than 0", "--strategy", "rate_limited", "--rpm", "0"),
        case("rpm-negative", 2, "must be greater than 0", "--strategy", "rate_limited", "--rpm", "-60"),
        case("rpm-nan", 2, "must be greater than 0", "--strategy", "rate_limited", "--rpm", "nan"),
        case("rate-limited-no-rate", 2, "needs --rpm and/or --tpm", "--strategy", "rate_limited"),
        case("timeout-0", 2, "must be greater than 0", "--timeout", "0"),
        case("fault-rate-above-1", 2, "--mock-error-rate", "--mock-error-rate", "1.5"),
        case("fault-rates-sum-above-1", 2, "add up to 1.2", "--mock-error-rate", "0.6", "--mock-reset-rate", "0.6"),
        case("fault-rate-not-mock", 2, "only to --endpoint mock", "--endpoint", LOCAL_URL, "--mock-error-rate", "0.1"),
        case("latency-not-mock", 2, "only to --endpoint mock", "--endpoint", LOCAL_URL, "--latency", "1"),
        case("endpoint-not-url", 2, "neither 'mock' nor an http(s) URL", "--endpoint", "api.openai.com"),
        case("endpoint-spec-unknown-key", 2, "expected one of", "--endpoint", LOCAL_URL + ",colour=red"),
        case("endpoint-spec-rpm", 2, "rpm=lots", "--endpoint", LOCAL_URL + ",rpm=lots"),
        case("several-with-mock", 2, "cannot be one of several", "--endpoint", "mock", "--endpoint", LOCAL_URL),
        case(
            "several-threads",
            2,
            "threads sends to one endpoint only",
            *("--strategy", "threads", "--endpoint", LOCAL_URL, "--endpoint", LOCAL_URL),
        ),
        case(
            "several-key-unset",
            2,
            "NO_SUCH_KEY_7 (for",
            *("--endpoint", LOCAL_URL + ",key_env=NO_SUCH_KEY_7", "--endpoint", LOCAL_URL, "--calls", "3"),
        ),
        case("batch-delay-bad", 2, "batch_delay", "--mock-batch-delay", "soon", "--calls", "3"),
        case("batch-delay-not-mock", 2, "only to --endpoint mock", "--endpoint", LOCAL_URL, "--mock-batch-delay", "1"),
        case("max-calls", 2, "would send 500 calls, more than 100", "--calls", "500", "--max-calls", "100"),
        case("api-key-env-unset", 2, "NO_SUCH_VAR_5 is not set", "--api-key-env", "NO_SUCH_VAR_5"),
        case("unknown-option", 2, "No such option '--conc'", "--conc", "3"),
        case("out-unwritable", 1, "cannot write results", "--out", "{tmp}/a_file/run", "--calls", "3"),
        case("out-holds-a-run", 1, "already holds a run", "--out", "{tmp}/old", "--calls", "3"),
        case("resume-no-run", 1, "holds no run to resume", "--resume", "{tmp}/nothing-here"),
        case("resume-bad-run-json", 1, "run.json:2: not valid JSON", "--resume", "{tmp}/broken"),
        case("resume-old-run-json", 1, "does not record the run's flags", "--resume", "{tmp}/old"),
        case("resume-with-flags", 2, "drop --calls", "--resume", "{tmp}/old", "--calls", "9"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(files: Path, args: list[str], code: int, fragment: str) -> None:
    result = invoke([arg.replace("{tmp}", str(files)) for arg in args])
    assert_one_line_error(result, code, fragment)


def test_unreachable_endpoint_fails_fast_before_writing(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = invoke(["--endpoint", url, "--calls", "50", "--out", str(tmp_path / "run")])
    assert_one_line_error(result, 1, f"cannot reach {url}: connection refused")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("strategy", ["semaphore", "threads"])
def test_401_stops_the_run_after_the_first_answers(
    mock_server_factory: MockServerFactory, tmp_path: Path, strategy: str
) -> None:
    server = mock_server_factory(latency="fixed:0.02", api_key="the-right-key")
    out = tmp_path / "run"
    args = ["--endpoint", server.base_url, "--strategy", strategy, "--calls", "2000", "--concurrency", "8"]
    result = invoke([*args, "--out", str(out)], env={"OPENAI_API_KEY": "a-wrong-key"})
    assert_one_line_error(result, 1, "authentication failed (HTTP 401)")
    assert "of 2000 calls" in result.stderr
    received = server.stats().received
    assert 1 <= received <= 16  # the first window at most, not the remaining ~2,000
    rows = read_rows(out)
    assert len(rows) == received  # every call that was sent has its row
    assert {row["http_status"] for row in rows} == {"401"}
    assert "paid endpoint" not in result.output  # loopback: no cost guard


def test_404_model_stops_the_run(mock_server_factory: MockServerFactory, tmp_path: Path) -> None:
    server = mock_server_factory(latency="fixed:0.02", models=("gpt-4o-mini",))
    args = ["--endpoint", server.base_url, "--model", "gpt-nope", "--calls", "500", "--concurrency", "5"]
    result = invoke([*args, "--out", str(tmp_path / "run")])
    assert_one_line_error(result, 1, "not found (HTTP 404)")
    assert server.stats().received <= 10


@pytest.mark.usefixtures("no_connection")
def test_paid_endpoint_needs_yes_and_sends_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--endpoint", "https://api.openai.com/v1", "--calls", "5000", "--out", str(out)]
    result = invoke(args, env={"OPENAI_API_KEY": "sk-test-key"})
    assert_one_line_error(result, 2, "refusing to send 5000 calls to https://api.openai.com/v1 without --yes")
    # the estimate came first: calls, model, tokens, cost from the built-in price table
    assert "5,000 calls to model gpt-4o-mini" in result.stdout
    assert "$0.15/$0.6 per 1M tokens" in result.stdout
    assert not out.exists()


def test_paid_endpoint_with_yes_goes_on_to_the_reachability_check(tmp_path: Path, unreachable: list[str]) -> None:
    args = [
        "--endpoint",
        "https://llm.example.com/v1",
        "--model",
        "my-model",
        "--calls",
        "20",
        "--yes",
        "--price-in",
        "3",
        "--price-out",
        "15",
        "--out",
        str(tmp_path / "run"),
    ]
    result = invoke(args, env={"OPENAI_API_KEY": "sk-test-key"})
    assert_one_line_error(result, 1, "cannot reach https://llm.example.com/v1")
    assert unreachable == ["https://llm.example.com/v1"]
    assert "20 calls to model my-model" in result.stdout
    assert "$3/$15 per 1M" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["--price-in", "1"], "--price-in and --price-out go together", id="price-in-alone"),
        pytest.param(
            ["--price-table", "{tmp}/prices.csv"],
            "prices.csv:2: price 'cheap' is not a number",
            id="price-table-bad-row",
        ),
        pytest.param(["--price-table", "{tmp}/none.json"], "cannot read price table", id="price-table-missing"),
    ],
)
def test_bad_price_input(files: Path, args: list[str], fragment: str) -> None:
    base = ["--endpoint", "https://api.openai.com/v1", "--calls", "10"]
    result = invoke([*base, *(a.replace("{tmp}", str(files)) for a in args)], env={"OPENAI_API_KEY": "sk-x"})
    assert_one_line_error(result, 2, fragment)


def test_paid_endpoint_without_a_key_says_so() -> None:
    result = invoke(["--endpoint", "https://api.openai.com/v1", "--calls", "10"])
    assert_one_line_error(result, 1, "no API key for https://api.openai.com/v1: set OPENAI_API_KEY")


def test_resume_refuses_a_changed_personas_file(tmp_path: Path) -> None:
    people = tmp_path / "people.jsonl"
    line = '{"id":%d,"name":"A","age":30,"gender":"f","occupation":"x","city":"c","state":"s","education":"e"}\n'  # noqa: E501
    people.write_text("".join(line % i for i in range(4)))
    out = tmp_path / "run"
    first = invoke(["--personas-file", str(people), "--calls", "4", "--latency", "0", "--out", str(out)])
    assert first.exit_code == 0, first.output
    people.write_text("".join(line % i for i in range(4)).replace('"A"', '"B"'))
    result = invoke(["--resume", str(out)])
    assert_one_line_error(result, 1, "differ from the ones that ran")
    assert json.loads((out / "run.json").read_text())["config"]["params"]["calls"] == 4


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        pytest.param(["--concurrency", "0"], 2, "must be at least 1, got 0", id="usage-error"),
    ],
)
def test_the_real_entry_point_prints_one_line(files: Path, args: list[str], code: int, fragment: str) -> None:
    done = run_bench(["run", *(a.replace("{tmp}", str(files)) for a in args)], cwd=files, env=bench_env())
    assert done.returncode == code
    assert "Traceback" not in done.stderr + done.stdout
    lines = error_lines(done.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
