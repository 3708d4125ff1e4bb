"""The option schema: each option declared once, and every command's flags, keys and keywords made from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.cli.options import markdown
from bench.engine.errors import OptionsError
from bench.engine.options import RunOptions
from bench.engine.schema import BY_NAME, GROUPS, OPTIONS, SEARCHED, for_command, suite_keys
from bench.suite.config import RUN_WIDE

ROOT = Path(__file__).resolve().parents[2]


def help_of(command: str) -> str:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_each_option_is_declared_once() -> None:
    names = [option.name for option in OPTIONS]
    assert len(names) == len(set(names))
    flags = [option.cli_flag for option in OPTIONS]
    assert len(flags) == len(set(flags))


def test_bench_run_takes_every_option_as_a_flag_shown_under_its_group() -> None:
    shown = help_of("run")
    headings = [line.strip() for line in shown.splitlines() if line.strip().rstrip(":").lower() in GROUPS]
    assert [h.rstrip(":").lower() for h in headings] == list(GROUPS)
    for option in OPTIONS:
        assert re.search(rf"{re.escape(option.cli_flag)}(?![\w-])", shown), option.cli_flag


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_load_tests_take_every_option_they_do_not_search(command: str) -> None:
    shown = help_of(command)
    for option in OPTIONS:
        present = re.search(rf"{re.escape(option.cli_flag)}(?![\w-])", shown) is not None
        if option.name == "strategies":
            assert present  # their own --strategy: one strategy
        elif option.name in SEARCHED:
            assert not present, option.cli_flag
        else:
            assert present, option.cli_flag


def test_bench_suite_takes_the_session_flags_and_its_file_takes_the_rest() -> None:
    shown = help_of("suite")
    flags = {option.name for option in for_command("suite")}
    assert {"out", "resume", "yes", "max_calls", "checks", "junit", "quiet"} <= flags
    for name in flags:
        assert BY_NAME[name].cli_flag in shown
    keys = suite_keys()
    shaping = {option.name for option in OPTIONS if not option.session} - {"out"}
    assert shaping <= keys  # every option that shapes the results is a suite key
    assert not RUN_WIDE - keys


def test_every_api_keyword_is_read_by_the_one_reader() -> None:
    given = {"calls": "3", "concurrency": [2], "strategies": "semaphore", "latency": "fixed:0.01", "stream": True}
    options = RunOptions.from_params(given)
    assert (options.workload.calls, options.workload.concurrency, options.client.stream) == (3, (2,), True)
    with pytest.raises(OptionsError, match="did you mean 'concurrency'"):
        RunOptions.from_params({"concurency": 2})


def test_the_options_page_is_made_from_the_schema() -> None:
    assert (ROOT / "docs" / "options.md").read_text(encoding="utf-8") == markdown()


def test_a_refusal_names_its_flag_once() -> None:
    """``Invalid value for '--x':`` only when the message does not already say which flag it refuses."""
    assert OptionsError("must be greater than 0", hint="--timeout").describe() == (
        "Invalid value for '--timeout': must be greater than 0"
    )
    said = "--rpm/--tpm pace rate_limited only: add it to --strategy, or drop them"
    assert OptionsError(said, hint="--rpm").describe() == said
    assert OptionsError("no hint").describe() == "no hint"
