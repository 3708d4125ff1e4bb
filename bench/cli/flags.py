"""Click flags generated from the option schema (``bench.engine.schema``), shown in ``--help`` by group.

Every generated flag passes its text through unchanged (no click type), so that the schema's one
reader checks a flag, a suite key and a run.json value alike, with the same one-line message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from bench.engine.schema import GROUPS, Option, for_command

F = TypeVar("F", bound=Callable[..., Any])


class GroupedOption(click.Option):
    """A click option that knows its help group."""

    def __init__(self, *args: Any, help_group: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_group = help_group


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its options under the schema's groups, in the schema's order."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            group = getattr(param, "help_group", "") or "other"
            sections.setdefault(group, []).append(record)
        order = [*GROUPS, "other"]
        for group in sorted(sections, key=lambda name: order.index(name) if name in order else len(order)):
            with formatter.section(group.capitalize()):
                formatter.write_dl(sections[group])


def _click_option(option: Option) -> Callable[[F], F]:
    decls = [option.cli_flag, option.name] + ([option.short] if option.short else [])
    shown = "" if option.default in (None, False) else f" [default: {option.default}]"
    kwargs: dict[str, Any] = {
        "cls": GroupedOption,
        "help_group": option.group,
        "help": option.help + shown,
        "default": None,
    }
    if option.is_flag:
        kwargs.update(is_flag=True, default=False)
    else:
        kwargs["metavar"] = option.metavar or ("PATH" if option.path else _metavar(option))
        if option.path:
            kwargs["type"] = click.Path(path_type=Path)
    if option.multiple:
        kwargs["multiple"] = True
        kwargs["default"] = ()
    return click.option(*decls, **kwargs)


def _metavar(option: Option) -> str:
    return "N" if option.default is None or isinstance(option.default, int) else "VALUE"


def schema_options(command: str, *, skip: frozenset[str] = frozenset()) -> Callable[[F], F]:
    """The schema's flags for ``command`` (less ``skip``), each declared once, in the schema's order."""

    def decorate(function: F) -> F:
        for option in reversed(for_command(command)):
            if option.name not in skip:
                function = _click_option(option)(function)
        return function

    return decorate


def given(params: Mapping[str, Any]) -> dict[str, Any]:
    """The options the command line gave (a flag left off, an empty repeatable, an unset value: not given)."""
    return {name: value for name, value in params.items() if value not in (None, False, ())}
