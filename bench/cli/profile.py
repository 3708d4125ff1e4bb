"""``bench profile list`` and ``bench profile show NAME|FILE``: what the mock's provider profiles set."""

from __future__ import annotations

import click
from rich.table import Table

from bench.cli.ui import BadInput, console
from bench.mock.profile import Profile, ProfileError, Refusal, builtin_names, load_profile


@click.group("profile")
def profile() -> None:
    """The mock's provider profiles (`bench mock-server --profile NAME|FILE`)."""


@profile.command("list")
def list_profiles() -> None:
    """List the built-in profiles."""
    table = Table("profile", "rpm", "tpm", "description", box=None, pad_edge=False)
    for name in builtin_names():
        p = load_profile(name)
        table.add_row(name, _num(p.rpm), _num(p.tpm), p.description)
    console.print(table, markup=False)


@profile.command("show")
@click.argument("name_or_file")
def show(name_or_file: str) -> None:
    """Print what one profile sets (a built-in's name, or a TOML file)."""
    try:
        p = load_profile(name_or_file)
    except ProfileError as exc:
        raise BadInput(str(exc)) from None
    table = Table("setting", "value", box=None, pad_edge=False, title=p.name, title_justify="left")
    for key, value in rows(p):
        table.add_row(key, value)
    console.print(table, markup=False)


def rows(p: Profile) -> list[tuple[str, str]]:
    """The profile as (setting, value) rows, in one short table."""
    limits = ", ".join(f"{k} {_num(v)}" for k, v in p.limits().items() if v is not None) or "none"
    h = p.headers
    headers = "none" if h.on == "never" else f"{h.template} ({', '.join(h.fields)}; reset as {h.reset_format})"
    q = p.quirks
    out = [
        ("limits", limits),
        ("429", _refusal(p.rate_limit)),
        ("rate-limit headers", headers if h.on == "never" else f"{headers}, {_on(h.on)}"),
        ("connection", "close after each reply" if q.connection_close else "keep-alive"),
        ("stream", f"usage {q.stream_usage}, {'data: [DONE]' if q.sse_done else 'no data: [DONE]'}"),
        ("unknown fields", "refused: " + _refusal(q.unknown_refusal) if q.unknown_fields == "reject" else "ignored"),
        ("/v1/models", "empty" if q.models == "empty" else "lists the models"),
    ]
    if q.rejected_fields:
        out.append(("refused fields", f"{', '.join(sorted(q.rejected_fields))}: {_refusal(q.field_refusal)}"))
    out += [(f"fault {name}", _refusal(refusal)) for name, refusal in p.faults.items()]
    if p.source:
        out.append(("source", " ".join(p.source.split())))
    return out


def _on(on: str) -> str:
    return "on every reply" if on == "every" else "on 429s only"


def _refusal(r: Refusal) -> str:
    parts = [str(r.status), f"{r.body} body"]
    if r.type:
        parts.append(r.type)
    if r.finish_reason:
        parts.append(f"finish_reason {r.finish_reason}")
    parts.append("retry: " + (", ".join(r.retry_after) if r.retry_after else "none"))
    return ", ".join(parts)


def _num(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"
