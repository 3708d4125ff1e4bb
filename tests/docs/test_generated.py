"""The docs' generated and listed pages are current: CLI and option references, data contracts, the nav."""

from __future__ import annotations

import re
from pathlib import Path

from bench.core.records import CALL_COLUMNS
from bench.report.summary import ENDPOINT_COLUMNS, SUMMARY_COLUMNS, TALLY_COLUMNS
from tests.docs.generate import CLI_PAGE, OPTIONS_PAGE, ROOT, cli_markdown, options_markdown
from tests.docs.runnable import runnable_blocks

DATA_PAGE = ROOT / "docs" / "data.md"


def test_the_cli_reference_is_what_the_commands_print() -> None:
    assert CLI_PAGE.read_text(encoding="utf-8") == cli_markdown(), "run: python -m tests.docs.generate"


def test_the_option_reference_is_what_the_schema_says() -> None:
    assert OPTIONS_PAGE.read_text(encoding="utf-8") == options_markdown(), "run: python -m tests.docs.generate"


def _section(text: str, title: str) -> str:
    """The text of the ``## title`` section of a page."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match is not None, f"docs/data.md has no '## {title}' section"
    return match.group(1)


def test_the_data_contracts_page_names_every_column_the_code_writes() -> None:
    text = DATA_PAGE.read_text(encoding="utf-8")
    for title, columns in (
        ("calls.csv", CALL_COLUMNS),
        ("summary.csv", SUMMARY_COLUMNS),
        ("tally.csv", TALLY_COLUMNS),
        ("endpoints.csv", ENDPOINT_COLUMNS),
    ):
        section = _section(text, title)
        missing = [column for column in columns if f"`{column}`" not in section]
        assert not missing, f"docs/data.md, section {title}, does not describe: {', '.join(missing)}"


def test_every_page_of_the_docs_folder_is_in_the_site_nav() -> None:
    nav = re.findall(r"([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M)
    pages = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert pages - set(nav) == set(), "pages missing from mkdocs.yml's nav"
    assert set(nav) - pages == set(), "nav entries with no page"


def test_runnable_markers_are_well_formed_and_used() -> None:
    blocks = runnable_blocks()  # raises on a marker without a fence or with another language
    assert {Path(block.path).name for block in blocks} >= {"README.md", "getting-started.md"}
