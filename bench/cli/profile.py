"""``bench profile list|show|record``: what the mock's provider profiles set, and a new one recorded."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.table import Table

from bench.cli.run_checks import confirm_paid, guard_options
from bench.cli.ui import BadInput, RunFailed, console
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
    if p.timing:
        out.append(("timing", ", ".join(f"{name} {spec}" for name, spec in p.timing.items())))
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


@profile.command("record")
@click.option("--endpoint", required=True, metavar="URL", help="The OpenAI-compatible base URL (…/v1) to probe.")
@click.option("--model", required=True, help="The model to ask.")
@click.option(
    "--calls", type=click.IntRange(2, 100), default=10, show_default=True, help="Streamed calls to time, one at a time."
)
@click.option("--burst", is_flag=True, help="Then send calls at once, in waves, up to the first 429.")
@click.option(
    "--burst-max", type=click.IntRange(1, 500), default=60, show_default=True, help="The most calls the burst sends."
)
@click.option("--name", default=None, help="The profile's name (default: recorded-HOST).")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="The TOML file (default: NAME.toml)."
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@guard_options
def record_profile(
    endpoint: str,
    model: str,
    calls: int,
    burst: bool,
    burst_max: int,
    name: str | None,
    out: Path | None,
    force: bool,
    api_key_env: str,
    yes: bool,
    max_calls: int | None,
    price_table: Path | None,
    price_in: float | None,
    price_out: float | None,
) -> None:
    """Probe an endpoint (a few calls; a burst only with --burst) and write a profile the mock replays.

    Keeps header names and formats, limits, refusals' shapes, stream and connection quirks and timing
    distributions; never the key, the prompts or the answers. Paid endpoints are asked about first.
    """
    # Imported here: the engine (and its strategies) only when recording.
    from bench.core.calls import calls_for_count, load_personas
    from bench.engine.gate import guard_calls
    from bench.engine.guard import url_problem
    from bench.engine.options import GuardOptions
    from bench.mock.record import ProbePlan, RecordError, record, to_toml

    problem = url_problem(endpoint)
    if problem is not None or urlsplit(endpoint).scheme not in ("http", "https"):
        raise BadInput(f"--endpoint: {problem or 'expected an http(s) URL'}")
    name = name or "recorded-" + re.sub(r"[^A-Za-z0-9.-]+", "-", urlsplit(endpoint).hostname or "endpoint")
    out = out or Path(f"{name}.toml")
    if out.exists() and not force:
        raise BadInput(f"{out} exists (pass --force to overwrite it)")
    plan = ProbePlan(calls=calls, burst=burst, burst_max=burst_max)
    todo = calls_for_count(load_personas(), plan.most_calls)
    console.print(f"probe of {endpoint}: {plan.describe()}", markup=False, soft_wrap=True)
    guard = GuardOptions(yes=yes, max_calls=max_calls, price_table=price_table, price_in=price_in, price_out=price_out)
    api_key = guard_calls(
        endpoint=endpoint, model=model, todo=todo, guard=guard, api_key_env=api_key_env, confirm=confirm_paid
    )
    try:
        recording = record(endpoint, model, api_key, todo, plan)
    except RecordError as exc:
        raise RunFailed(str(exc)) from None
    out.write_text(to_toml(recording, name=name), encoding="utf-8")
    try:
        load_profile(str(out))  # what was written must load (a bug here, not the user's)
    except ProfileError as exc:
        raise RunFailed(f"the recorded profile does not load: {exc}") from None
    console.print(f"wrote {out}: {len(recording.replies)} chat replies observed", markup=False)
