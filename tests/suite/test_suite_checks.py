"""``checks = [...]`` in a suite: validated with the file, judged after it, written to summary.json and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.engine.session import RunHooks
from bench.suite.config import SuiteError, parse_suite
from bench.suite.run import SuiteOptions, plan_suite, run_suite_benchmark

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
    with pytest.raises(SuiteError, match=r"suite\.checks: check 'http_42 == 0': unknown column 'http_42'"):
        parse_suite(SUITE.format(checks='"http_42 == 0"'), source=Path("ci.toml"))


def test_a_suites_checks_are_judged_on_every_cell(tmp_path: Path) -> None:
    path = tmp_path / "ci.toml"
    path.write_text(SUITE.format(checks='"ok >= 1"'))
    junit = tmp_path / "checks.xml"
    options = SuiteOptions(path=path, out=tmp_path / "run", checks=("http_429 == 0",), junit=junit)
    result = run_suite_benchmark(options, plan_suite(path), RunHooks())
    assert [(v.check.text, v.passed) for v in result.verdicts] == [("ok >= 1", True), ("http_429 == 0", False)]
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    document = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert document["checks_passed"] is False
    assert document["summary"][0]["calls"] == 30
