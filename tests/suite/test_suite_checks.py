"""``checks = [...]`` in a suite: validated with the file, judged after it, written to summary.json and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.engine.options import RunOptions
from bench.engine.session import RunHooks, run_session
from bench.suite.config import SuiteError, parse_suite
from bench.suite.plan import plan_parsed, plan_suite, session_options

SUITE = """
[suite]
name = "ci"
calls = 30
checks = [{checks}]

[[experiment]]
name = "limited"
strategies = ["gather"]
latency = ["fixed:0.01"]
mock_rpm = [600]
"""


def test_a_bad_check_in_a_suite_names_the_key() -> None:
    text = SUITE.format(checks='"http_42 == 0"')
    with pytest.raises(SuiteError, match=r"suite\.checks: check 'http_42 == 0': unknown column 'http_42'"):
        plan_parsed(parse_suite(text, source=Path("ci.toml")), text, Path("ci.toml"))


@pytest.mark.slow
def test_a_suites_checks_are_judged_on_every_cell(tmp_path: Path) -> None:
    path = tmp_path / "ci.toml"
    path.write_text(SUITE.format(checks='"ok >= 1"'))
    junit = tmp_path / "checks.xml"
    session = RunOptions.from_params({"out": tmp_path / "run", "checks": ["http_429 == 0"], "junit": junit})
    plan = plan_suite(path)
    result = run_session(session_options(plan, session), plan.program(), RunHooks())
    assert [(v.check.text, v.passed) for v in result.verdicts] == [("ok >= 1", True), ("http_429 == 0", False)]
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    document = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert document["checks_passed"] is False
    assert document["summary"][0]["calls"] == 30
