"""Every feature in every command: it has its effect in the outputs, or the command refuses it in one line.

The matrix is FEATURE × COMMAND (``bench run``, ``bench suite``, ``bench sweep``, ``bench tune``, and
``bench.run``). A feature a command takes must show in what the run wrote or what the server saw; a
combination that makes no sense must be refused with exit 2, one ``error:`` line, no traceback and
nothing sent. An option silently ignored is the failure this module exists to catch.

Cells are small (12 calls at the mock's fixed 10 ms, 4 at a time) and run in this process; the Ray
cells share one local Ray instance, come last, and are marked slow. The servers are the session's (one
set a worker), so the cells spread over the xdist workers instead of queueing behind one.

How each command is told (``tests/support/composition.py``): flags for ``bench run``, ``bench sweep``
and ``bench tune`` (``--endpoint``/``--check`` repeated); for a suite, the axes (strategies,
concurrency, latency, rate) in one ``[[experiment]]``, every other option under ``[suite]`` by its
snake_case name, ``--check``/``--junit``/``--cancel-on-interrupt`` on its command line (or ``checks``/``junit``
keys); keywords for ``bench.run``. A resume is ``bench run|sweep|tune --resume DIR`` alone, ``bench suite FILE
--resume DIR``, ``bench.run(resume=DIR)``. A refusal's line names what it refuses (``batch_api``,
``rate``, the unknown option).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from bench.mock import MockConfig, MockServer
from tests.support.composition import (
    BASE,
    Command,
    HeaderRelay,
    Outcome,
    drop_last_rows,
    invoke,
    one_line,
    read_csv,
    run_cli,
    unique_keys,
    values_of,
    write_suite,
)

EVERY: Final[tuple[Command, ...]] = ("run", "suite", "sweep", "tune", "api")
# The commands that run the cells they are told; a sweep or a tune picks its own levels and rates.
PLANNED: Final[tuple[Command, ...]] = ("run", "suite", "api")
# Against a server of our own, the mock's latency flag has no place: the server has its own.
ON_A_SERVER: Final = {k: v for k, v in BASE.items() if k != "latency"}

CHOICES: Final = ("adopt", "decline", "undecided")
PETS: Final = {"q1": "cat", "q2": "dog", "q3": "fish", "q4": "bird"}


# A sweep or a tune runs a cell per level it tries, and a suite starts its own mock: the slow tier's.
SLOW_COMMANDS: Final = {"suite", "sweep", "tune"}


def commands(*names: Command) -> list[Any]:
    return [pytest.param(name, id=name, marks=[pytest.mark.slow] if name in SLOW_COMMANDS else []) for name in names]


# -- shared set-up ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Survey:
    """A persona table with columns of its own (``pid,pet,city``) and a workload asking about ``{pet}``."""

    personas: Path
    workload: Path


@pytest.fixture(scope="session")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Survey:
    folder = tmp_path_factory.mktemp("survey")
    personas = folder / "pets.csv"
    cities = ("Oslo", "Lima", "Pune", "Riga")
    rows = [f"{pid},{pet},{city}" for (pid, pet), city in zip(PETS.items(), cities, strict=True)]
    personas.write_text("pid,pet,city\n" + "\n".join(rows) + "\n", encoding="utf-8")
    workload = folder / "pets.toml"
    workload.write_text(
        'name = "pets"\n'
        'question = "Would you adopt another {pet}? You live in {city}."\n'
        f"choices = {json.dumps(list(CHOICES))}\n",
        encoding="utf-8",
    )
    return Survey(personas=personas, workload=workload)


def _server(**config: Any) -> Iterator[MockServer]:
    with MockServer(MockConfig(latency="fixed:0.01", **config)) as server:
        yield server


@pytest.fixture(scope="session")
def _server_a() -> Iterator[MockServer]:
    yield from _server()


@pytest.fixture(scope="session")
def _server_b() -> Iterator[MockServer]:
    yield from _server()


@pytest.fixture(scope="session")
def _bystander() -> Iterator[MockServer]:
    # A batch job takes 10 ms here: a refusal that fails lets the run go on without a 10 s wait.
    yield from _server(batch_delay="fixed:0.01")


@pytest.fixture(scope="session")
def _limited() -> Iterator[MockServer]:
    yield from _server(rpm=PACED_RPM)  # a bucket of 10 requests, refilled at 10 a second


@pytest.fixture
def limited(_limited: MockServer) -> MockServer:
    _limited.reset_stats()
    return _limited


@pytest.fixture
def server_a(_server_a: MockServer) -> MockServer:
    _server_a.reset_stats()
    return _server_a


@pytest.fixture
def server_b(_server_b: MockServer) -> MockServer:
    _server_b.reset_stats()
    return _server_b


@dataclass(frozen=True, kw_only=True)
class Bystander:
    """The endpoint of every refused command, and its Batch API counts before (a reset keeps them)."""

    server: MockServer
    batches_before: dict[str, int]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def assert_sent_nothing(self) -> None:
        stats = self.server.stats()
        assert stats.received == 0, f"a refused command sent {stats.received} chat requests"
        assert (stats.batches or {}) == self.batches_before, f"a refused command used the Batch API: {stats.batches}"


@pytest.fixture
def bystander(_bystander: MockServer) -> Bystander:
    _bystander.reset_stats()
    return Bystander(server=_bystander, batches_before=dict(_bystander.stats().batches or {}))


@pytest.fixture(scope="session")
def _relay(_server_a: MockServer) -> Iterator[HeaderRelay]:
    with HeaderRelay(_server_a.url) as relay:
        yield relay


@pytest.fixture
def relay(_relay: HeaderRelay, server_a: MockServer) -> HeaderRelay:
    _relay.seen.clear()
    return _relay


# -- judging ------------------------------------------------------------------------------------


def ran(outcome: Outcome, out: Path) -> list[dict[str, str]]:
    """The command succeeded and wrote a run folder; its calls.csv rows."""
    assert outcome.crash is None, outcome.describe()
    assert outcome.exit_code == 0, outcome.describe()
    rows = read_csv(out / "calls.csv")
    assert rows, "no calls were written"
    return rows


def ok_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok, f"no call succeeded: {Counter(r['error'] for r in rows).most_common(3)}"
    return ok


def cells_in(out: Path) -> int:
    return len(read_csv(out / "summary.csv"))


def assert_refused(outcome: Outcome, fragment: str, bystander: Bystander | None = None) -> None:
    """Exit 2, one ``error:`` line naming ``fragment``, no traceback, nothing sent to ``bystander``."""
    assert outcome.crash is None, outcome.describe()
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.exit_code == 2, outcome.describe()
    lines = one_line(outcome.stderr)
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error:"), lines[0]
    assert fragment in lines[0], lines[0]
    if bystander is not None:
        bystander.assert_sent_nothing()


# -- 1. a workload file and a persona table of its own ------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_a_workload_and_its_persona_table_shape_every_call_and_the_tally(
    command: Command, survey: Survey, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    options = {**BASE, "workload": survey.workload, "personas_file": survey.personas, "id_column": "pid"}
    rows = ran(invoke(command, options, out=out), out)

    assert all(r["status"] == "ok" for r in rows), Counter(r["error"] for r in rows)
    assert {r["answer"] for r in rows} <= set(CHOICES)  # the mock answered from the schema's enum
    assert {r["persona_id"] for r in rows} == set(PETS)  # ids from the pid column, every persona asked
    tally = read_csv(out / "tally.csv")
    assert tally
    assert {t["answer"] for t in tally} <= set(CHOICES)


# -- 2. synthetic lengths -----------------------------------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_synthetic_lengths_reach_the_server_and_every_answer_is_cut_at_its_output_tokens(
    command: Command, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    rows = ran(invoke(command, {**BASE, "prompt_tokens": 64, "output_tokens": 8}, out=out), out)

    assert all(r["status"] == "ok" for r in rows), Counter(r["error"] for r in rows)
    # The mock honours max_tokens with ignore_eos: all 8 tokens written, the answer cut by length.
    assert {r["completion_tokens"] for r in rows} == {"8"}
    assert {r["finish_reason"] for r in rows} == {"length"}
    # The mock counts about four characters a token with the message's overhead: 64 words read as
    # 87-88 tokens (the election's prompt reads ~135).
    assert all(48 <= int(r["prompt_tokens"]) <= 96 for r in rows), sorted({r["prompt_tokens"] for r in rows})


# -- 3. streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_streaming_fills_the_time_to_first_token_of_every_ok_row(command: Command, tmp_path: Path) -> None:
    out = tmp_path / "run"
    rows = ok_rows(ran(invoke(command, {**BASE, "stream": True}, out=out), out))

    assert all(r["ttft_s"] != "" and float(r["ttft_s"]) >= 0 for r in rows), [r["ttft_s"] for r in rows]
    assert all(r["output_tokens"] != "" for r in rows)


# -- 4. several endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_calls_are_shared_between_endpoints_by_their_stated_rpm(
    command: Command, server_a: MockServer, server_b: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    specs = [f"{server_a.base_url},rpm=600,label=a", f"{server_b.base_url},rpm=1800,label=b"]
    rows = ran(invoke(command, {**ON_A_SERVER, "endpoints": specs}, out=out), out)

    answered = Counter(r["endpoint"] for r in rows)
    assert set(answered) == {"a", "b"}
    assert (server_a.stats().received, server_b.stats().received) == (answered["a"], answered["b"])
    assert answered["b"] / len(rows) == pytest.approx(0.75, abs=0.05)  # 600 : 1800


# -- 5. pacing ----------------------------------------------------------------------------------


PACED_RPM: Final = 600


@pytest.mark.parametrize("command", commands(*EVERY))
def test_rate_limited_is_paced_to_its_rpm_in_every_cell(command: Command, limited: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = {**ON_A_SERVER, "endpoint": limited.base_url, "strategy": "rate_limited", "rpm": PACED_RPM}
    rows = ran(invoke(command, options, out=out), out)

    # 12 calls at once would empty the server's 10-request bucket; paced at its rate, none is refused.
    assert all(r["status"] == "ok" for r in rows), Counter(r["error"] for r in rows)
    assert sum(int(r["http_429s"]) for r in rows) == 0  # the SDK's hidden retries counted too
    assert {r["strategy"] for r in rows} == {"rate_limited"}


@pytest.mark.parametrize("command", commands(*EVERY))
def test_a_pace_no_strategy_keeps_is_refused(command: Command, bystander: Bystander, tmp_path: Path) -> None:
    """--rpm/--tpm pace rate_limited only: with semaphore alone they would do nothing, silently."""
    options = {**ON_A_SERVER, "endpoint": bystander.base_url, "tpm": 60_000}
    assert_refused(invoke(command, options, out=tmp_path / "run"), "pace rate_limited only", bystander)


@pytest.mark.parametrize("workload", [{}, {"calls": 12}], ids=["the-talk", "the-default-strategy"])
@pytest.mark.parametrize("command", commands("run", "sweep", "tune", "api"))
def test_a_pace_with_no_strategy_named_is_refused(
    command: Command, workload: dict[str, Any], bystander: Bystander, tmp_path: Path
) -> None:
    """No --strategy: the talk's plan (or the default semaphore) has no strategy a pace would pace."""
    options = {"endpoint": bystander.base_url, "rpm": PACED_RPM, **workload}
    assert_refused(invoke(command, options, out=tmp_path / "run"), "pace rate_limited only", bystander)


# An option with no effect without another: (option, value, what the refusal names, the commands that take it).
IDLE_OPTIONS: Final = (
    # --no-ignore-eos turns off the ignore_eos that --output-tokens sends: without it there is none
    ("no_ignore_eos", True, "--no-ignore-eos", EVERY),
    # --cancel-on-interrupt cancels the Batch API jobs an interrupt leaves running: semaphore has none
    ("cancel_on_interrupt", True, "--cancel-on-interrupt", PLANNED),
    # --max-in-flight caps constant/poisson's arrivals: a closed loop's window is its concurrency
    ("max_in_flight", 8, "max-in-flight", EVERY),
)


@pytest.mark.parametrize(
    ("option", "value", "named", "command"),
    [
        pytest.param(option, value, named, *param.values, id=f"{option}-{param.id}", marks=param.marks)
        for option, value, named, where in IDLE_OPTIONS
        for param in commands(*where)
    ],
)
def test_an_option_without_what_it_acts_on_is_refused(
    option: str, value: Any, named: str, command: Command, bystander: Bystander, tmp_path: Path
) -> None:
    options = {**ON_A_SERVER, "endpoint": bystander.base_url, option: value}
    assert_refused(invoke(command, options, out=tmp_path / "run"), named, bystander)


@pytest.mark.parametrize("command", commands(*EVERY))
def test_the_mocks_batch_delay_with_no_batch_api_cell_is_refused(command: Command, tmp_path: Path) -> None:
    """--mock-batch-delay is how long the built-in mock takes over a batch file: a run of semaphore sends none."""
    refusal = invoke(command, {**BASE, "mock_batch_delay": "fixed:0.1"}, out=tmp_path / "run")
    assert_refused(refusal, "--mock-batch-delay")
    assert not (tmp_path / "run" / "calls.csv").exists()


# -- 6. warm-up ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_warmup_leaves_no_connection_set_up_in_any_cell(command: Command, tmp_path: Path) -> None:
    out = tmp_path / "run"
    rows = ok_rows(ran(invoke(command, {**BASE, "warmup": True}, out=out), out))

    # Cold, the first wave of every cell opens its connections (connect_s > 0 on about C rows).
    assert [r["connect_s"] for r in rows if r["connect_s"] == "" or float(r["connect_s"]) != 0] == []


# -- 7. checks and JUnit ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "all_in_file"),
    [
        *(pytest.param(*param.values, False, id=param.id, marks=param.marks) for param in commands(*EVERY)),
        pytest.param("suite", True, id="suite-keys", marks=pytest.mark.slow),
    ],
)
def test_checks_are_judged_and_written_as_one_junit_testcase_per_cell(
    command: Command, all_in_file: bool, tmp_path: Path
) -> None:
    out, junit = tmp_path / "run", tmp_path / "checks.xml"
    options = {**BASE, "checks": ["http_429 == 0"], "junit": junit}
    ran(invoke(command, options, out=out, all_in_file=all_in_file), out)

    assert junit.is_file(), "no JUnit file was written"
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    assert len(cases) == cells_in(out) >= 1
    assert [c for c in cases if c.find("failure") is not None or c.find("error") is not None] == []


@pytest.mark.parametrize("command", commands("run", "suite", "sweep", "tune"))
def test_a_failing_check_exits_1(command: Command, tmp_path: Path) -> None:
    outcome = invoke(command, {**BASE, "checks": ["calls > 100000"]}, out=tmp_path / "run")

    assert outcome.crash is None, outcome.describe()
    assert outcome.exit_code == 1, outcome.describe()
    assert "calls > 100000" in outcome.stderr


# -- 8. resume ----------------------------------------------------------------------------------

DROPPED: Final = 4


@pytest.mark.parametrize("command", commands(*EVERY))
def test_resume_sends_exactly_the_calls_missing_from_the_folder(
    command: Command, server_a: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    options = {**ON_A_SERVER, "endpoint": server_a.base_url}
    whole = ran(invoke(command, options, out=out), out)
    drop_last_rows(out, DROPPED)  # a run stopped short of its last calls
    server_a.reset_stats()

    after = ran(invoke(command, options, out=out, resume=True), out)

    assert server_a.stats().received == DROPPED
    assert len(after) == len(whole)  # every call once
    assert unique_keys(after) == unique_keys(whole)


# -- 9. clients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_the_aiohttp_client_sends_every_call(command: Command, relay: HeaderRelay, tmp_path: Path) -> None:
    out = tmp_path / "run"
    rows = ran(invoke(command, {**ON_A_SERVER, "client": "aiohttp", "endpoint": relay.base_url}, out=out), out)

    assert all(r["status"] == "ok" for r in rows), Counter(r["error"] for r in rows)
    assert set(values_of(json.loads((out / "run.json").read_text()), "client")) == {"aiohttp"}
    # As the server saw it: aiohttp's own User-Agent on every call, never the SDK's.
    agents = Counter(seen.user_agent for seen in relay.posts())
    assert sum(agents.values()) == len(rows)
    assert all("aiohttp/" in agent and "OpenAI" not in agent for agent in agents), agents


# -- 9b. synthetic loads ------------------------------------------------------------------------


@pytest.mark.parametrize("command", commands(*EVERY))
def test_a_temperature_reaches_every_request_of_a_synthetic_load(
    command: Command, relay: HeaderRelay, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    options = {**ON_A_SERVER, "endpoint": relay.base_url, "prompt_tokens": 32, "temperature": 0.3}
    rows = ran(invoke(command, options, out=out), out)

    bodies = [json.loads(seen.body) for seen in relay.posts()]
    assert len(bodies) == len(rows) > 0
    assert {body.get("temperature") for body in bodies} == {0.3}  # was dropped: no temperature at all
    assert all("response_format" not in body for body in bodies)  # still a synthetic load


@pytest.mark.parametrize(
    ("flag", "value"),
    [("choices", ["a", "b"]), ("system", "You are brief."), ("max_tokens", 5), ("response_format", "text")],
)
@pytest.mark.parametrize("command", commands("run", "api", "sweep"))
def test_a_synthetic_load_refuses_the_survey_flags_it_would_drop(
    command: Command, flag: str, value: Any, bystander: Bystander, tmp_path: Path
) -> None:
    options = {**ON_A_SERVER, "endpoint": bystander.base_url, "prompt_tokens": 32, flag: value}
    refusal = invoke(command, options, out=tmp_path / "run")
    assert_refused(refusal, f"make their own prompts: drop --{flag.replace('_', '-')}", bystander)


# -- 10. open-loop arrivals ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", commands(*PLANNED))
def test_open_loop_arrivals_reach_the_server_at_the_asked_rate(
    command: Command, server_a: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # Seed 1: its 200 Poisson arrivals average 39.5 a second (seed 0's sample averages 35.8).
    options = {"strategy": "poisson", "rate": 40, "calls": 200, "seed": 1, "endpoint": server_a.base_url}
    rows = ran(invoke(command, options, out=out), out)

    assert len(rows) == 200
    arrived = sorted(server_a.stats(detail=True).admitted_s or ())
    assert len(arrived) == 200
    assert (len(arrived) - 1) / (arrived[-1] - arrived[0]) == pytest.approx(40, rel=0.08)


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", commands("sweep", "tune"))
def test_batch_api_has_no_place_in_a_load_test(command: Command, bystander: Bystander, tmp_path: Path) -> None:
    options = {**ON_A_SERVER, "strategy": "batch_api", "endpoint": bystander.base_url}
    assert_refused(invoke(command, options, out=tmp_path / "run"), "batch_api", bystander)


@pytest.mark.parametrize("command", commands(*PLANNED))
@pytest.mark.parametrize(("option", "said"), [({"client": "aiohttp"}, "--client"), ({"warmup": True}, "--warmup")])
def test_batch_api_alone_has_no_chat_client_to_choose_or_warm(
    command: Command, option: dict[str, Any], said: str, bystander: Bystander, tmp_path: Path
) -> None:
    options = {**ON_A_SERVER, "strategy": "batch_api", "endpoint": bystander.base_url, **option}
    assert_refused(invoke(command, options, out=tmp_path / "run"), said, bystander)


@pytest.mark.parametrize("command", commands(*PLANNED))
def test_batch_api_cannot_stream(command: Command, bystander: Bystander, tmp_path: Path) -> None:
    options = {**ON_A_SERVER, "strategy": "batch_api", "stream": True, "endpoint": bystander.base_url}
    assert_refused(invoke(command, options, out=tmp_path / "run"), "batch_api", bystander)


def test_a_suite_of_poisson_without_a_rate_is_refused_by_its_dry_run(tmp_path: Path) -> None:
    options = {"strategy": "poisson", "calls": 12, "latency": "fixed:0.01", "dry_run": True}
    assert_refused(invoke("suite", options, out=tmp_path / "run"), "rate")


@pytest.mark.parametrize(
    ("command", "named"),
    [
        pytest.param("run", "--no-such-option", id="run"),
        pytest.param("suite", "no_such_option", id="suite"),
        pytest.param("sweep", "--no-such-option", id="sweep"),
        pytest.param("tune", "--no-such-option", id="tune"),
        pytest.param("api", "no_such_option", id="api"),
    ],
)
def test_an_unknown_option_is_refused_in_one_line_naming_it(
    command: Command, named: str, bystander: Bystander, tmp_path: Path
) -> None:
    options = {**ON_A_SERVER, "endpoint": bystander.base_url, "no_such_option": 1}
    assert_refused(invoke(command, options, out=tmp_path / "run"), named, bystander)


def test_an_unknown_key_in_an_experiment_is_refused_in_one_line_naming_it(bystander: Bystander, tmp_path: Path) -> None:
    suite_file = write_suite({**ON_A_SERVER, "endpoint": bystander.base_url}, tmp_path / "suite.toml")
    suite_file.write_text(suite_file.read_text() + "no_such_option = 1\n")  # in the [[experiment]] table
    outcome = run_cli(["suite", str(suite_file), "--out", str(tmp_path / "run"), "-q"])
    assert_refused(outcome, "no_such_option", bystander)


# -- 5. Ray (slow: one local Ray instance for them all) -----------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("command", commands(*EVERY))
def test_ray_workers_share_every_cell(command: Command, tmp_path: Path) -> None:
    out = tmp_path / "run"
    rows = ran(invoke(command, {**BASE, "backend": "ray", "workers": 2}, out=out), out)

    assert all(r["status"] == "ok" for r in rows), Counter(r["error"] for r in rows)
    assert len({r["worker"] for r in rows if r["worker"]}) == 2


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("command", commands(*PLANNED))
def test_batch_api_cannot_run_on_ray(command: Command, bystander: Bystander, tmp_path: Path) -> None:
    options = {**ON_A_SERVER, "strategy": "batch_api", "backend": "ray", "workers": 2, "endpoint": bystander.base_url}
    assert_refused(invoke(command, options, out=tmp_path / "run"), "batch_api", bystander)
