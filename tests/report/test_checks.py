"""The check grammar, its verdicts per cell, and the JUnit XML they become."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from bench.report.checks import CheckError, evaluate, failure_line, parse_check
from bench.report.junit import write_junit
from bench.report.summary import SUMMARY_COLUMNS

STRATEGIES = ("gather", "rate_limited", "adaptive")


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_check(text, SUMMARY_COLUMNS, STRATEGIES)


def summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"scenario": "main", "strategy": "gather", "concurrency": 100, "http_429": 258, "utilisation": 1.4},
            {"scenario": "main", "strategy": "rate_limited", "concurrency": 10, "http_429": 0, "utilisation": 0.95},
            {"scenario": "main", "strategy": "adaptive", "concurrency": 10, "http_429": 0, "utilisation": math.nan},
        ]
    )


@pytest.mark.parametrize(
    ("text", "scope", "column", "op", "bound"),
    [
        pytest.param("http_429 == 0", None, "http_429", "==", 0.0, id="plain"),
        pytest.param("rate_limited: utilisation >= 0.9", "rate_limited", "utilisation", ">=", 0.9, id="scoped"),
        pytest.param("latency_p99_s<5", None, "latency_p99_s", "<", 5.0, id="no-spaces"),
        pytest.param("error_rate <= 1e-2", None, "error_rate", "<=", 0.01, id="exponent"),
        pytest.param("  efficiency != -.5 ", None, "efficiency", "!=", -0.5, id="negative"),
    ],
)
def test_checks_parse_into_scope_column_operator_and_bound(
    text: str, scope: str | None, column: str, op: str, bound: float
) -> None:
    check = parse(text)
    assert (check.scope, check.column, check.op, check.bound) == (scope, column, op, bound)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("http_42 == 0", "unknown column 'http_42'", id="unknown-column"),
        pytest.param("strategy == 1", "unknown column 'strategy'", id="label-column"),
        pytest.param("http_429 = 0", "cannot read check", id="single-equals"),
        pytest.param("http_429 == zero", "cannot read check", id="not-a-number"),
        pytest.param("__import__('os').system('true') == 0", "cannot read check", id="code"),
        pytest.param("http_429 == 0 or 1", "cannot read check", id="trailing"),
        pytest.param("nope: http_429 == 0", "unknown strategy 'nope'", id="unknown-strategy"),
        pytest.param("", "cannot read check", id="empty"),
    ],
)
def test_bad_checks_are_refused_with_one_line(text: str, fragment: str) -> None:
    with pytest.raises(CheckError, match=None) as caught:
        parse(text)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_check_is_judged_on_every_cell_and_a_scope_narrows_it() -> None:
    verdicts = evaluate([parse("http_429 == 0"), parse("rate_limited: utilisation >= 0.9")], summary())
    assert [(v.strategy, v.check.column, v.passed) for v in verdicts] == [
        ("gather", "http_429", False),
        ("rate_limited", "http_429", True),
        ("rate_limited", "utilisation", True),
        ("adaptive", "http_429", True),
    ]
    assert failure_line([v for v in verdicts if not v.passed]).startswith(
        "check 'http_429 == 0' failed on main gather C=100: http_429 = 258"
    )


def test_a_missing_value_fails_rather_than_passes() -> None:
    (verdict,) = evaluate([parse("adaptive: utilisation >= 0")], summary())
    assert not verdict.passed
    assert math.isnan(verdict.value)


def test_a_check_that_found_no_cell_fails() -> None:
    only_gather = summary().iloc[:1]
    (verdict,) = evaluate([parse("rate_limited: http_429 == 0")], only_gather)
    assert not verdict.passed
    assert verdict.cell == "no rate_limited cell ran"


def test_junit_has_one_testcase_per_cell_and_check_and_failures_carry_value_and_bound(tmp_path: Path) -> None:
    verdicts = evaluate([parse("http_429 == 0"), parse("utilisation >= 0.9")], summary())
    path = tmp_path / "out" / "checks.xml"
    write_junit(path, verdicts, suite_name="bench run")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    failures = [case.find("failure") for case in cases if case.find("failure") is not None]
    assert len(cases) == 6 == int(suite.get("tests", "-1")) == int(root.get("tests", "-1"))
    assert len(failures) == 2 == int(suite.get("failures", "-1")) == int(root.get("failures", "-1"))
    messages = sorted(str(f.get("message")) for f in failures if f is not None)
    assert messages == ["http_429 = 258, expected == 0", "utilisation = no value, expected >= 0.9"]
    assert all(case.get("name") and case.get("classname") for case in cases)
