"""``bench options``: the option reference, made from the one option schema (the docs print it)."""

from __future__ import annotations

import click

from bench.cli.ui import console
from bench.engine.schema import GROUPS, reference


def markdown() -> str:
    """The reference as a Markdown page: one table per help group."""
    rows = reference()
    lines = [
        "# Options",
        "",
        "Every option of `bench run`, as a flag, a suite-file key and a `bench.run(...)` keyword.",
        "Made by `bench options --markdown` from the one option schema (`bench/engine/schema.py`);",
        "a test keeps this page equal to it. `bench sweep` and `bench tune` take every option but",
        "`--strategy` (one, theirs), `--concurrency`, `--rate`, `--personas` and `--repeats` (they search",
        "those); `bench suite FILE` takes the session's flags (output, checks, the paid-endpoint guard)",
        "on the command line and every other option as a key of the suite file.",
    ]
    for group in GROUPS:
        mine = [row for row in rows if row["group"] == group]
        if not mine:
            continue
        lines += [
            "",
            f"## {group.capitalize()}",
            "",
            "| flag | suite key / keyword | default | meaning |",
            "|---|---|---|---|",
        ]
        for row in mine:
            key = row["suite_key"] or f"({row['api_keyword']})"
            default = f"`{row['default']}`" if row["default"] else ""
            meaning = row["help"].replace("|", "\\|")
            lines.append(f"| `{row['flag']}` | `{key}` | {default} | {meaning} |")
    lines += [
        "",
        "A keyword in parentheses is not a suite key: give it to `bench suite` on its command line.",
        "",
    ]
    return "\n".join(lines)


@click.command("options")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the reference as Markdown (the docs' page).")
def options_command(as_markdown: bool) -> None:
    """List every option: its flag, suite key, API keyword, default and meaning."""
    if as_markdown:
        click.echo(markdown(), nl=False)
        return
    for row in reference():
        console.print(f"{row['flag']:<26} {row['group']:<12} {row['help']}", markup=False, soft_wrap=True)
