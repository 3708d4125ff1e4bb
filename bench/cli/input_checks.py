"""Checks on what a person or a file hands the CLI, each failing in one line that never echoes a secret."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import click

from bench.cli.ui import RunFailed
from bench.engine.guard import url_problem
from bench.records import RUN_FILE

ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_endpoint_url(endpoint: str, hint: str = "--endpoint") -> None:
    """An http(s) URL that parses and carries no credentials (they would be printed and stored)."""
    problem = url_problem(endpoint)
    if problem is not None:
        raise click.BadParameter(problem, param_hint=hint)


def check_key_env_name(name: str) -> None:
    """``--api-key-env`` must name a variable; a pasted key is refused without being echoed."""
    if not ENV_NAME.fullmatch(name):
        looks_like_key = name.startswith(("sk-", "sk_")) or len(name) > 40
        what = "looks like a key, not a variable's name" if looks_like_key else "is not an environment variable name"
        raise click.BadParameter(f"the value given {what} (it is not shown)", param_hint="--api-key-env")


def check_key(key: str, env: str) -> None:
    """A key that HTTP can carry: printable ASCII, no whitespace (a key file saved on Windows ends in \\r)."""
    for char in key:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise click.UsageError(f"the key in {env} contains a control character (a trailing \\r or \\n?)")
        if ord(char) > 0x7E:
            raise click.UsageError(f"the key in {env} contains a non-ASCII character")
        if char == " ":
            raise click.UsageError(f"the key in {env} contains a space")


def check_out_dir(out: Path | None, *, resuming: bool = False) -> None:
    """``--out`` names a new or empty folder: never the current directory by accident, never another run."""
    if out is None or resuming:
        return
    if not str(out).strip() or str(out) in (".", "./"):
        raise click.BadParameter("give a folder name (an empty --out would write into the current directory)")
    if (out / RUN_FILE).exists():
        raise RunFailed(f"{out} already holds a run: complete it with --resume {out}, or pick another --out")
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file, not a folder", param_hint="--out")
    if out.is_dir() and any(out.iterdir()):
        raise RunFailed(f"{out} is not empty: pick a new or empty folder (nothing in it is overwritten)")
