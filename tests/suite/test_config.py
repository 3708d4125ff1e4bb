"""Suite TOML: one-line errors naming the key (exit 2), and expansion into cells and mock servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.core.oslimits import raise_open_file_limit
from bench.suite.config import SuiteError, parse_suite
from bench.suite.plan import expand, plan_parsed, plan_suite

SUITES = Path(__file__).resolve().parents[2] / "fixtures" / "suites"
GOOD = """
[suite]
calls = 12
[[experiment]]
strategies = ["semaphore"]
concurrency = [2]
latency = "fixed:0"
"""


def suite_text(suite: str = "", experiment: str = 'strategies = ["gather"]') -> str:
    return f"[suite]\n{suite}\n[[experiment]]\n{experiment}\n"


def plan_text(text: str, name: str = "x.toml") -> object:
    """A suite's text read and planned, every value checked (as ``bench suite --dry-run`` does)."""
    return plan_parsed(parse_suite(text, source=Path(name)), text, Path(name))


def bad(case: str, message: str, *, exp: str = "", suite: str = "", raw: str | None = None) -> object:
    """A bad suite (``raw`` text, or [suite] + one experiment) and how its error must start."""
    text = raw if raw is not None else suite_text(suite, exp or GATHER)
    return pytest.param(text, message, id=case)


SEM = 'strategies = ["semaphore"]\n'
GATHER = 'strategies = ["gather"]\n'
RATE = 'strategies = ["rate_limited"]\nconcurrency = [2]\n'
WHOLE = "expected a whole number ≥ 1"
URL = 'endpoint = "http://127.0.0.1:9/v1"'
BAD = [
    bad("toml-syntax", "x.toml: invalid TOML", raw="not = [valid"),
    bad("top-key", "sweet: unknown top-level key", raw="[sweet]\n[[experiment]]\nstrategies=['gather']"),
    bad("no-experiment", "experiment: at least one", raw="[suite]\ncalls = 3"),
    bad("suite-key", "suite.colour: unknown key", suite='colour = "red"'),
    bad("experiment-key", "experiment[1].concurrancy: unknown key", exp=GATHER + "concurrancy = [2]"),
    bad("unknown-strategy", "experiment[1].strategies: unknown strategy 'nope'", exp='strategies = ["nope"]'),
    bad("no-strategies", "experiment[1].strategies: empty list", exp="strategies = []"),
    bad("missing-strategies", "experiment[1].strategies: required", exp="concurrency = [2]"),
    bad("missing-concurrency", "experiment[1].concurrency: required for semaphore", exp=SEM),
    bad("zero-concurrency", "experiment[1].concurrency: must be at least 1, got 0", exp=SEM + "concurrency = [4, 0]"),
    bad(
        "text-concurrency", "experiment[1].concurrency: 'ten' is not a whole number", exp=SEM + 'concurrency = ["ten"]'
    ),
    bad("fractional-concurrency", "experiment[1].concurrency: '2.5' is not a whole", exp=SEM + "concurrency = [2.5]"),
    bad("bool-concurrency", "experiment[1].concurrency: 'True' is not a whole", exp=SEM + "concurrency = [true]"),
    bad("repeated-concurrency", "experiment[1].concurrency: repeated", exp=SEM + "concurrency = [2, 2]"),
    bad("bad-latency", "experiment[1].latency: bad latency spec 'w:1'", exp=GATHER + 'latency = "w:1"'),
    bad("lognormal-one-arg", "experiment[1].latency: bad latency", exp=GATHER + 'latency = ["lognormal:2"]'),
    bad("latency-number", "experiment[1].latency: expected latency specs", exp=GATHER + "latency = [0.2]"),
    bad("rate-limited-no-rpm", "experiment[1].strategies: rate_limited needs --rpm", exp=RATE),
    bad("negative-rpm", "experiment[1].rpm: expected a number", exp=RATE + "rpm = -5"),
    bad("zero-mock-rpm", f"experiment[1].mock_rpm: {WHOLE}", exp=GATHER + "mock_rpm = [0]"),
    bad("empty-mock-slots", "experiment[1].mock_max_concurrency: empty list", exp=GATHER + "mock_max_concurrency = []"),
    bad(
        "calls-and-personas",
        "experiment[1]: use either --calls or --personas/--repeats",
        exp=GATHER + "calls = 5\npersonas = 2",
    ),
    bad("zero-reps", f"suite.repetitions: {WHOLE}", suite="repetitions = 0"),
    bad("retries", "suite.max_retries: must be at least 0, got -1", suite="max_retries = -1"),
    bad("timeout-text", "suite.timeout: 'soon' is not a number", suite='timeout = "soon"'),
    bad("seed-text", "suite.seed: 'x' is not a number", suite='seed = "x"'),
    bad("empty-name", "suite.name: expected a non-empty string", suite='name = ""'),
    bad("endpoint-scheme", "suite.endpoint: 'ftp://x' is neither", suite='endpoint = "ftp://x"'),
    bad(
        "url-with-latency",
        'experiment[1].latency: applies only to endpoint = "mock"',
        suite=URL,
        exp=GATHER + 'latency = "fixed:0.1"',
    ),
    bad(
        "url-with-mock-limit",
        "experiment[1].mock_rpm: applies only to endpoint",
        suite=URL,
        exp=GATHER + "mock_rpm = 60",
    ),
    bad(
        "duplicate-name",
        "experiment[2].name: 'a' is already used",
        raw=f'[[experiment]]\nname = "a"\n{GATHER}[[experiment]]\nname = "a"\n{GATHER}',
    ),
    bad(
        "second-experiment",
        "experiment[2].bogus: unknown key",
        raw=f"[[experiment]]\n{GATHER}[[experiment]]\n{GATHER}bogus = 1",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_suite_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(SuiteError) as caught:
        plan_text(text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_personas_beyond_the_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(suite_text(experiment='strategies = ["gather"]\npersonas = 6000'))
    with pytest.raises(SuiteError, match=r"^experiment\[1\]\.personas: 6000 exceeds the 5000"):
        plan_suite(path)


def test_missing_personas_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(suite_text('personas_file = "nowhere.jsonl"', 'strategies = ["gather"]'))
    with pytest.raises(SuiteError, match=r"^experiment\[1\]\.personas_file: cannot read personas file .*nowhere"):
        plan_suite(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param(suite_text("", 'strategies = ["warp"]'), "experiment[1].strategies", id="strategy"),
        pytest.param(suite_text("", GATHER + 'latency = "slow"'), "experiment[1].latency", id="latency"),
        pytest.param(None, "cannot read suite file", id="missing-file"),
    ],
)
def test_cli_says_what_is_wrong_in_one_line_exit_2(tmp_path: Path, text: str | None, needle: str) -> None:
    path = tmp_path / "suite.toml"
    if text is not None:
        path.write_text(text)
    result = CliRunner().invoke(cli, ["suite", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def cells_of(name: str) -> list[tuple[str, str, int, int]]:
    plan = plan_suite(SUITES / f"{name}.toml")
    return [(c.scenario, c.strategy, c.concurrency, len(c.calls)) for c in plan.cells]


@pytest.mark.slow
def test_ci_suite_expands_to_18_cells_on_3_mock_servers() -> None:
    plan = plan_suite(SUITES / "ci.toml")
    assert [g.mock.latency for g in plan.groups if g.mock] == ["fixed:0.005", "fixed:0.02", "fixed:0.01"]
    assert [g.mock.rpm for g in plan.groups if g.mock] == [None, None, 1200]
    assert len(plan.cells) == 18
    assert plan.total_calls == 16 * 100 + 2 * 40
    window = [c for c in cells_of("ci") if c[0] == "window|lat=fixed:0.005|rep=1"]
    assert [(s, c) for _, s, c, _ in window] == [
        ("sequential", 1),
        ("gather", 100),
        ("semaphore", 1),
        ("semaphore", 4),
        ("semaphore", 16),
        ("batched", 1),
        ("batched", 4),
        ("batched", 16),
    ]
    limits = {c[0] for c in cells_of("ci") if c[0].startswith("limits")}
    assert limits == {"limits|lat=fixed:0.01|mock_rpm=1200|rpm=1200|rep=1"}


def test_seed_suite_is_the_talk() -> None:
    plan = plan_suite(SUITES / "seed.toml")
    assert [(s, c, n) for _, s, c, n in cells_of("seed")] == [
        ("sequential", 1, 10),
        ("gather", 10, 10),
        ("batched", 100, 5000),
        ("semaphore", 100, 5000),
    ]
    assert {g.mock.latency for g in plan.groups if g.mock} == {"lognormal:2.6,0.25"}
    ten_asks = plan.cells[0].calls
    assert {c.persona_id for c in ten_asks} == {ten_asks[0].persona_id}
    assert len({c.persona_id for c in plan.cells[2].calls}) == 5000


def test_sweep_suite_doubles_c_from_1_to_1024() -> None:
    cells = cells_of("sweep")
    levels = [2**k for k in range(11)]
    expected = [("semaphore", c) for c in levels] + [("batched", c) for c in levels]
    assert [(s, c) for _, s, c, _ in cells] == expected
    assert {n for *_, n in cells} == {2048}
    assert len(plan_suite(SUITES / "sweep.toml").groups) == 1


def test_matrix_gives_each_repetition_and_mock_limit_its_own_server_and_scenario() -> None:
    text = """
    [suite]
    seed = 10
    calls = 6
    [[experiment]]
    name = "m"
    strategies = ["sequential", "rate_limited"]
    concurrency = [2, 3]
    latency = ["fixed:0.1", "lognormal:1,0.5"]
    mock_rpm = [60, 120]
    rpm = [30, 60]
    repetitions = 2
    """
    suite = parse_suite(text, source=Path("m.toml"))
    groups = expand(suite)
    assert len(groups) == 2 * 2 * 2  # repetitions × latency × mock_rpm
    assert [g.mock.seed for g in groups if g.mock] == [10] * 4 + [11] * 4
    first = groups[0]
    assert first.mock is not None
    assert (first.mock.latency, first.mock.rpm) == ("fixed:0.1", 60)
    scenarios = [c.scenario for c in first.cells]
    assert scenarios[0] == "m|lat=fixed:0.1|mock_rpm=60|rpm=30|rep=1"
    # Per rpm knob: sequential once (C=1) and rate_limited at each C.
    assert [(c.strategy, c.concurrency, c.rpm) for c in first.cells] == [
        ("sequential", 1, 30),
        ("rate_limited", 2, 30),
        ("rate_limited", 3, 30),
        ("sequential", 1, 60),
        ("rate_limited", 2, 60),
        ("rate_limited", 3, 60),
    ]
    keys = [c.key for g in groups for c in g.cells]
    assert len(keys) == len(set(keys)) == 8 * 6


@pytest.mark.parametrize("pace", ["tpm = 6000", "tpm = [6000, 12000]"])
def test_rate_limited_paced_by_tokens_alone_is_planned(pace: str) -> None:
    """``tpm`` without ``rpm`` paces ``rate_limited`` (the call count was once planned with ``rpm`` only)."""
    suite = parse_suite(suite_text("calls = 4", RATE + pace), source=Path("t.toml"))
    cells = [cell for group in expand(suite) for cell in group.cells]
    assert {cell.tpm for cell in cells} == ({6000} if pace == "tpm = 6000" else {6000, 12000})
    assert {cell.rpm for cell in cells} == {None}


def test_axes_under_suite_reach_every_experiment_that_does_not_set_them() -> None:
    """``[suite]`` sets every option for all: an axis there was dropped (the experiment's unset one won)."""
    top = 'calls = 4\nrpm = 600\nmock_rpm = 900\nlatency = "fixed:0.1"'
    own = RATE + 'latency = ["zero"]'
    suite = parse_suite(suite_text(top, own), source=Path("a.toml"))
    (group,) = expand(suite)
    assert group.mock is not None
    assert (group.mock.rpm, group.mock.latency) == (900, "zero")  # the experiment's own latency wins
    assert {cell.rpm for cell in group.cells} == {600}


def test_a_rate_under_suite_reaches_the_open_loop_experiment() -> None:
    """[suite]'s options alone have no open-loop strategy: how they combine is each experiment's to say."""
    text = suite_text('calls = 10\nrate = [20]\nlatency = "zero"', 'strategies = ["poisson"]')
    (group,) = plan_text(text).groups  # type: ignore[attr-defined]
    assert [(cell.strategy, cell.rate) for cell in group.cells] == [("poisson", 20)]


def test_url_endpoint_runs_without_a_mock() -> None:
    text = suite_text(URL + "\ncalls = 4", 'strategies = ["gather", "sequential"]')
    suite = parse_suite(text, source=Path("u.toml"))
    groups = expand(suite)
    assert [g.mock for g in groups] == [None]
    assert [c.scenario for c in groups[0].cells] == ["rep=1", "rep=1"]


def test_experiment_workload_overrides_the_suite_default() -> None:
    text = """
    [suite]
    calls = 7
    [[experiment]]
    name = "a"
    strategies = ["gather"]
    [[experiment]]
    name = "b"
    strategies = ["gather"]
    personas = 3
    repeats = 2
    """
    groups = expand(parse_suite(text, source=Path("w.toml")))
    assert [len(g.cells[0].calls) for g in groups] == [7, 6]
    assert [g.cells[0].concurrency for g in groups] == [7, 6]  # gather runs at C = N


def test_run_json_config_keeps_the_file_but_masks_the_key(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text("# my key is sk-live-0123456789\n" + GOOD)
    plan = plan_suite(path)
    config = plan.program(secret="sk-live-0123456789").describe()
    assert "sk-live-0123456789" not in repr(config)
    assert config["suite_toml"].startswith("# my key is ***")
    assert sum(cell["calls"] for cell in config["cells"]) == 12
    assert config["servers"][0]["latency"] == "fixed:0"
    assert "api_key" not in config["servers"][0]


def test_open_file_limit_is_lifted_to_the_hard_limit() -> None:
    resource = pytest.importorskip("resource")
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = raise_open_file_limit()
    assert limits == resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits is not None
    assert limits[1] == hard
    assert limits[0] >= before
    assert limits[0] == hard or hard == resource.RLIM_INFINITY


def test_stream_true_in_a_suite_streams_every_call() -> None:
    streamed = expand(parse_suite(suite_text("stream = true"), source=Path("s.toml")))
    plain = expand(parse_suite(suite_text(), source=Path("s.toml")))
    assert [g.options.client.stream for g in streamed] == [True]
    assert [g.options.client.stream for g in plain] == [False]
    with pytest.raises(SuiteError, match=r"^suite\.stream: expected true or false"):
        plan_text(suite_text('stream = "yes"'))
