"""``bench report --html``: one self-contained HTML file to share (tables, plots inlined, configuration, checks).

No script, no stylesheet or image fetched: the PNGs are inlined as base64, the style sits in the
page, so the file opens from disk, from a mail attachment or a CI artefact, without a server.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Final

from bench.report.fit import FittedTable

HTML_FILE: Final = "report.html"
STYLE: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
.meta { color: #666; }
table { border-collapse: collapse; margin: .6em 0 1.4em; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .3em 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: .25em .7em; text-align: right; white-space: nowrap; }
th { background: #f6f6f6; } td.left, th.left { text-align: left; }
td.value { text-align: left; white-space: normal; overflow-wrap: anywhere; max-width: 60em; }
.pass { color: #17803d; font-weight: 600; } .fail { color: #c0262d; font-weight: 700; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: .9em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 12px; }
ul.lines li { font-family: ui-monospace, monospace; font-size: 13px; }
"""


@dataclass(frozen=True, kw_only=True)
class Page:
    """What the report shows, in the order it shows it."""

    title: str
    tables: Sequence[FittedTable] = ()
    answer_tables: Sequence[FittedTable] = ()
    lines: Sequence[str] = ()  # sentences a run prints after its tables (answers, where the time went)
    checks: Sequence[Mapping[str, Any]] = ()  # summary.json's verdicts
    plots: Sequence[Path] = ()
    run: Mapping[str, Any] = field(default_factory=dict)  # run.json


def table_html(table: FittedTable) -> str:
    """A FittedTable as an HTML table with every column (a page scrolls; it need not drop any)."""
    head = "".join(f'<th class="{"left" if c.left else ""}">{escape(c.header)}</th>' for c in table.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"left" if c.left else ""}">{escape(cell.plain if hasattr(cell, "plain") else str(cell))}</td>'
            for c, cell in zip(table.columns, row, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    return f"<table><caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CHECK_HEADERS: Final = (("check", "left"), ("cell", "left"), ("value", ""), ("bound", "left"), ("", "left"))


def checks_html(checks: Sequence[Mapping[str, Any]]) -> str:
    """The checks' verdicts: one row per check and cell, pass or FAIL."""
    failed = sum(not c.get("passed") for c in checks)
    rows = []
    for check in checks:
        cell = f"{check.get('scenario', '')} {check.get('strategy', '')} C={check.get('concurrency', '')}".strip()
        mark = '<span class="pass">pass</span>' if check.get("passed") else '<span class="fail">FAIL</span>'
        value = check.get("value")
        shown = "–" if value is None else f"{value:g}" if isinstance(value, (int, float)) else str(value)
        limit = check.get("bound")
        bound = f"{check.get('op', '')} {limit:g}" if isinstance(limit, (int, float)) else str(limit or "")
        rows.append(
            f'<tr><td class="left">{escape(str(check.get("check", "")))}</td><td class="left">{escape(cell)}</td>'
            f'<td>{escape(shown)}</td><td class="left">{escape(bound)}</td><td class="left">{mark}</td></tr>'
        )
    caption = f"checks: {len(checks) - failed} passed, {failed} failed"
    head = "".join(f'<th class="{side}">{name}</th>' for name, side in CHECK_HEADERS)
    return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


PLOT_ORDER: Final = (
    "throughput",
    "latency",
    "speedup",
    "latency-cdf",
    "where-the-time-went",
    "tally_by",
    "knee",
    "stream",
)


def plot_order(path: Path) -> tuple[int, str]:
    """Plots as a run writes them: the cells' figures, the answers', a sweep's, the per-cell timelines last."""
    stem = path.stem
    for rank, kind in reversed(list(enumerate(PLOT_ORDER))):
        if stem.endswith(f"-{kind}") or stem.startswith(kind):
            return rank, stem
    return len(PLOT_ORDER), stem


def image_html(path: Path) -> str:
    """A PNG inlined as a data URI, captioned with its file name."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = escape(path.name)
    return f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>'


def _config_rows(config: Mapping[str, Any]) -> str:
    rows = []
    for key, value in config.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append(f'<tr><td class="left">{escape(str(key))}</td><td class="value">{escape(shown)}</td></tr>')
    return "".join(rows)


def config_html(run: Mapping[str, Any]) -> str:
    """run.json's configuration (never a secret: run.json holds none), versions and host, as tables."""
    parts = []
    config = dict(run.get("config") or {})
    params = config.pop("params", None)
    if isinstance(params, Mapping):  # an option left unset says nothing: its default is in the docs
        params = {name: value for name, value in params.items() if value is not None}
    sections = (("configuration", config), ("options set", params), ("versions", run.get("versions")))
    for title, values in sections:
        if isinstance(values, Mapping) and values:
            parts.append(f"<table><caption>{title}</caption><tbody>{_config_rows(values)}</tbody></table>")
    if isinstance(run.get("host"), Mapping):
        parts.append(f"<table><caption>host</caption><tbody>{_config_rows(run['host'])}</tbody></table>")
    return "".join(parts) or "<p>no run.json in the folder</p>"


def render(page: Page) -> str:
    """The whole page as one HTML string."""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [f"<h1>{escape(page.title)}</h1><p class='meta'>report written {made} by bench report --html</p>"]
    sections.append("<h2>Cells</h2>" + "".join(table_html(t) for t in page.tables))
    if page.answer_tables or page.lines:
        answers = "".join(table_html(t) for t in page.answer_tables)
        lines = "".join(f"<li>{escape(line)}</li>" for line in page.lines)
        sections.append(
            f"<h2>Answers and findings</h2>{answers}" + (f"<ul class='lines'>{lines}</ul>" if lines else "")
        )
    if page.checks:
        sections.append("<h2>Checks</h2>" + checks_html(page.checks))
    if page.plots:
        sections.append("<h2>Plots</h2>" + "".join(image_html(p) for p in sorted(page.plots, key=plot_order)))
    sections.append("<h2>Configuration</h2>" + config_html(page.run))
    body = "\n".join(f"<section>{s}</section>" for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(page.title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def write_html(page: Page, path: Path) -> Path:
    """``render(page)`` written to ``path``."""
    path.write_text(render(page), encoding="utf-8")
    return path
