"""``bench report``'s survey breakdowns (``--by COLUMN``) and its shareable page (``--html``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from bench.cli.ui import BadInput, console, errors

if TYPE_CHECKING:
    from bench.report.fit import FittedTable
    from bench.report.tables import RunData


def print_breakdowns(data: RunData, columns: Sequence[str], *, plots: bool) -> tuple[list[FittedTable], list[str]]:
    """Print each column's crosstab (and write plots/tally_by_COLUMN.png); returns the tables and the notes."""
    from bench.report.crosstab import LEGEND, crosstab_tables
    from bench.report.plots import safe_name
    from bench.report.tables import PLOTS_DIR
    from bench.survey.crosstab import CrosstabError, read_personas, tally_by

    if not columns:
        return [], []
    calls = data.answers()
    if calls is None:
        raise BadInput(f"{data.run_dir}: no calls.csv, so no answers to break down")
    try:
        personas = read_personas(data.run_dir)
        frames = {column: tally_by(calls, personas.frame, column) for column in columns}
    except CrosstabError as exc:
        raise BadInput(str(exc)) from None
    tables: list[FittedTable] = []
    notes: list[str] = []
    for column, frame in frames.items():
        found = crosstab_tables(frame)
        for table in found:
            console.print(table)
        if frame.attrs.get("note"):
            notes.append(frame.attrs["note"])
            console.print(f"[dim]{escape(frame.attrs['note'])}[/]")
        tables += found
        if plots and len(frame):
            _plot(frame, data.run_dir / PLOTS_DIR / f"tally_by_{safe_name(column)}.png")
    console.print(f"[dim]{escape(LEGEND)}[/]")
    console.print(f"[dim]persona table: {escape(str(personas.path))}[/]", soft_wrap=True)
    return tables, [*notes, LEGEND, f"persona table: {personas.path}"]


def _plot(frame: Any, path: Path) -> None:
    from bench.report.crosstab import plot_crosstab

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = plot_crosstab(frame, path)
    except Exception as exc:  # the tables are printed; a failing plot must not turn into a traceback
        errors.print(f"[yellow]warning:[/] plot not written: {type(exc).__name__}: {escape(str(exc))}")
        return
    if written is not None:
        console.print(f"plot: {written}", markup=False)


def write_page(
    data: RunData, tables: Sequence[FittedTable], answer_tables: Sequence[FittedTable], lines: Sequence[str]
) -> Path:
    """RUN_DIR/report.html: the tables, every PNG in RUN_DIR/plots inlined, the checks and the configuration."""
    from bench.core.records import RUN_FILE, SUMMARY_JSON_FILE
    from bench.report.html import HTML_FILE, Page, write_html
    from bench.report.tables import PLOTS_DIR

    run = _json(data.run_dir / RUN_FILE)
    checks = _json(data.run_dir / SUMMARY_JSON_FILE).get("checks") or []
    plots = sorted((data.run_dir / PLOTS_DIR).glob("*.png"))
    found = run.get("config")
    config: dict[str, Any] = found if isinstance(found, dict) else {}
    title = f"bench report: {config.get('run_id') or data.run_dir.name}"
    page = Page(
        title=title,
        tables=tables,
        answer_tables=answer_tables,
        lines=lines,
        checks=[c for c in checks if isinstance(c, dict)],
        plots=plots,
        run=run,
    )
    try:
        return write_html(page, data.run_dir / HTML_FILE)
    except OSError as exc:
        raise BadInput(f"cannot write {data.run_dir / HTML_FILE}: {exc.strerror or exc}") from None


def _json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when the file is missing or unreadable (the page says less)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
