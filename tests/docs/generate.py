"""The docs' generated pages: the CLI reference (from click) and the option reference (from the schema).

    python -m tests.docs.generate          # rewrites docs/cli.md and docs/options.md

``tests/docs/test_generated.py`` keeps both pages equal to what this prints, so a changed flag or
help text fails CI until the pages are made again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Final

import click

ROOT: Final = Path(__file__).resolve().parents[2]
CLI_PAGE: Final = ROOT / "docs" / "cli.md"
OPTIONS_PAGE: Final = ROOT / "docs" / "options.md"
WIDTH: Final = 88  # the help as a terminal of this width shows it, whatever the machine's


def _import_cli() -> ModuleType:
    """``bench.cli``, imported without keeping its hold on Ctrl-C.

    The package takes SIGINT over while a ``bench`` process starts (its ``main`` gives it back); imported
    here, nothing would, and this process would end on a later SIGINT with one word instead of a traceback.
    """
    handler = signal.getsignal(signal.SIGINT)
    import bench.cli

    signal.signal(signal.SIGINT, handler)
    return bench.cli


def _commands(command: click.Command, ctx: click.Context) -> Iterator[tuple[str, click.Context]]:
    yield ctx.command_path, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings))


def cli_markdown() -> str:
    """Every command's ``--help``, in the order ``bench --help`` lists them."""
    cli = _import_cli().cli

    settings = {**cli.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    root = click.Context(cli, info_name="bench", **settings)
    lines = [
        "# CLI reference",
        "",
        "Every command's `--help`, as `bench COMMAND --help` prints it. Made by `python -m tests.docs.generate`",
        "from the click commands themselves; a test keeps this page equal to it. The flags of `bench run`,",
        "`bench sweep`, `bench tune` and `bench suite` come from the one option schema: the",
        "[option reference](options.md) gives each one's suite key and Python keyword too.",
    ]
    for path, ctx in _commands(cli, root):
        lines += ["", f"## `{path}`", "", "```text", ctx.command.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def options_markdown() -> str:
    """The option reference, as ``bench options --markdown`` prints it."""
    _import_cli()
    from bench.cli.options import markdown

    return markdown()


def main() -> None:
    CLI_PAGE.write_text(cli_markdown(), encoding="utf-8")
    OPTIONS_PAGE.write_text(options_markdown(), encoding="utf-8")
    print(f"wrote {CLI_PAGE.relative_to(ROOT)} and {OPTIONS_PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
