"""Checks as JUnit XML: one testcase per (cell, check), so CI systems show failures natively."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from bench.report.checks import Verdict


def _value(value: float) -> str:
    return "no value" if math.isnan(value) else f"{value:g}"


def junit_tree(verdicts: Sequence[Verdict], *, suite_name: str) -> ET.ElementTree[ET.Element]:
    """One ``<testsuite>`` named ``suite_name``; a failure's message gives the value and the bound."""
    failures = sum(not v.passed for v in verdicts)
    root = ET.Element("testsuites", tests=str(len(verdicts)), failures=str(failures), errors="0")
    suite = ET.SubElement(
        root, "testsuite", name=suite_name, tests=str(len(verdicts)), failures=str(failures), errors="0", skipped="0"
    )
    for verdict in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{verdict.cell}", name=verdict.check.text)
        if not verdict.passed:
            check = verdict.check
            message = f"{check.column} = {_value(verdict.value)}, expected {check.op} {check.bound:g}"
            failure = ET.SubElement(case, "failure", message=message, type="CheckFailed")
            failure.text = f"{verdict.cell}: {message}"
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, verdicts: Sequence[Verdict], *, suite_name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(verdicts, suite_name=suite_name).write(path, encoding="utf-8", xml_declaration=True)
