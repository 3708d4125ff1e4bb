"""``bench profile list|show|record``: what the mock's provider profiles set, and a new one recorded."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.table import Table

from bench.cli.run_checks import confirm_paid, guard_options
from bench.cli.ui import BadInput, RunFailed, console
from bench.mock.profile import Profile, ProfileError, Quirks, Refusal, builtin_names, load_profile


@click.group("profile")
def profile() -> None:
    """The mock's provider profiles (`bench mock-server --profile NAME|FILE`)."""


@profile.command("list")
@click.option("--markdown", is_flag=True, help="Print the docs page of every built-in profile (docs/profiles.md).")
def list_profiles(markdown: bool) -> None:
    """List the built-in profiles."""
    if markdown:
        click.echo(markdown_page(), nl=False)
        return
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
        ("connection", _connection(q)),
        ("stream", f"usage {q.stream_usage}, {'data: [DONE]' if q.sse_done else 'no data: [DONE]'}"),
        ("unknown fields", "refused: " + _refusal(q.unknown_refusal) if q.unknown_fields == "reject" else "ignored"),
        ("JSON mode", "refused (400) unless a message says json" if q.json_mode_word else "taken as asked"),
        (
            "strict schemas",
            "refused (400) unless every object is closed and requires all its keys" if q.strict_schemas else "taken",
        ),
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


def _connection(q: Quirks) -> str:
    if not q.connection_close:
        return "keep-alive"
    return "close after each reply" if q.close_announced else "closed after each streamed reply, unannounced"


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


PAGE_HEAD = """# Provider profiles

The mock speaks OpenAI's dialect unless told otherwise. A **profile** makes it speak another provider's:
its limits, how it refuses (status, body, `retry-after`), its rate-limit headers (names, value formats,
on every reply or only on 429s), the other refusals it is known for (off until given a rate) and its
transport and stream quirks. A profile is a small TOML file: the built-in ones below ship in
`bench/mock/profiles/`, and a path to your own file works wherever a name does.

- `bench mock-server --profile azure-openai --fault content_filter=0.05`
- `bench run --mock-profile groq` (suite key `mock_profile`, API keyword `mock_profile`)
- in a test: `bench_mock(profile="anthropic-openai-compat")` (the pytest plugin's fixture)
- `bench profile show NAME|FILE` prints what one profile sets; limits given as options win over its own.

Made by `bench profile list --markdown` from the profile files; a test keeps this page equal to it.
Each profile cites the public document it follows and the date it was read; where a provider does not
document something, the profile says so (below, "Not documented") rather than inventing it.

"""

PAGE_RECORD = """## Recording a profile

`bench profile record --endpoint URL --model M --calls N [--burst]` probes an endpoint and writes a
profile the mock replays. It says what it will send first, and asks before sending to a paid
(non-loopback) endpoint (`--yes` to go on without asking; `--max-calls` caps it). It sends GET `/models`,
N streamed calls one at a time (timed), one call with `stream_options` only if usage never comes unasked,
one call carrying an unknown field, one in JSON mode that no message asks for (its own prompt, 16 tokens at
most) and, with `--burst`, waves of 20 calls at once after the buckets refill, stopping at the first 429
(at most `--burst-max`, 60). A 429 met on the way is waited out (`retry-after`, at most 10 s) and the call
sent again.

It keeps: the rate-limit header family, fields, reset format (duration, seconds, RFC 3339) and whether the
headers come on every reply or only on 429s; the limits they state (a requests reset hours away is a day's
budget; without `limit-*` headers, the most `remaining-*` seen); the burst depth (calls admitted at once
before the first 429); the 429's status, body shape, type, code, retry headers and wording (the model's
name, the wait and the limit made placeholders, org ids scrubbed); whether the server opens a fresh
connection for each streamed call (counted, not taken from a `Connection: close` header), ends streams
with `data: [DONE]`, sends usage unasked, when asked, or never, refuses the unknown field (with its status
and body), refuses JSON mode that no message asks for (`json_mode_word`: a 400 that says "json", as OpenAI's
does) and lists models; and the timing as latency specs (`[latency]`: `ttft`, `itl`, `output_tokens`,
`latency`), lognormals fitted robustly (median and interquartile range of the logs). It never stores the
key, the prompts or the answers: a text holding any of them is dropped. What it could not observe is
written in the file's `source`.

The round trip (`tests/mock/test_record.py`): the mock started with `openai-tier1` and a timing model is
recorded (16 calls, `--burst`), the mock started with the recording (another seed) is recorded again, and
both recordings must match the original: RPM and TPM exactly, the burst depth within two requests, the 429
dialect, the headers and the quirks exactly, output tokens exactly, the TTFT mean within -5 %/+30 % and its
σ within 0.1 of what the mock drew for those calls, the ITL mean within -10 %/+30 % of it (the ITL's σ
as recorded includes the client's read jitter and is not judged), and the replay's TTFT and ITL means
within -20 %/+35 % and -20 %/+40 % of the original model (16 calls' sampling). A connection the server
closes after each streamed reply without a `Connection: close` header is recorded as
`connection_close = true`, `close_announced = false`: the mock started with that file closes its streamed
replies' connections the same way (JSON replies keep theirs), so a pooling client meets the stale
connections it would meet on the real server. Recorded from llama.cpp's `llama-server` (a 2026-12-05
build; `tests/mock/data/llama-cpp-recorded.toml`, lab note of that date): `connection_close = true`,
`close_announced = false`, usage only when asked for (`stream_usage = "requested"`), `data: [DONE]`,
unknown fields ignored, no rate-limit headers. A stand-in (`tests/support/closing_server.py`) streams
as that build does.

"""

PAGE_ADAPTIVE = """## adaptive and rate_limited against each profile

`tests/strategies/test_profile_rate_limits.py` runs both strategies through `bench run` against the mock
speaking each built-in profile with a limit, scaled to 2,400 RPM and 150 calls (1,200 RPM and 250 calls for
the one that states nothing), judged by the mock's own counts: no 429 it could have avoided, and at least
95 % of the limit admitted. Two profiles differ:

- **groq**: its requests headers state the day (RPD), so the run binds on tokens per minute, which its
  headers do state. A day's budget has a reset under a minute after its first requests (6 s after one of
  14,400), which `adaptive` once took for a minute's bucket, and it was refused once at the start of each
  run; it now tells the two apart by the window the refill implies (`reset × limit / used`: 86,400 s, not
  60), and is refused nothing. Scaled, Groq's minute of tokens would hold the whole run, so the scaled
  mock holds a second's (`tokens_burst_seconds=1`). At Groq's own figures (30 RPM, 6,000 TPM; in virtual
  time, `tests/strategies/test_profile_own_figures.py`) the tokens bucket must hold a minute: a second's is
  100 tokens, less than one call (~250 with `max_tokens`), and every call, paced or not, waited for a full
  bucket and was refused about once. There `rate_limited --tpm 6000` is refused nothing at 100 % of the
  TPM, and `adaptive` once: the 30 RPM appear in no header, so it finds them by one 429.
- **google-openai-compat** sends no rate-limit header and no `retry-after`: nothing tells a client the
  limit before it is refused, so `adaptive` must be refused to find it. After the first 429 it measures
  the refill between two 429s at least 2 s and 60 admitted calls apart (the bucket is empty at each, so
  what was admitted between them is what refilled, within one call: 1.7 %), then sends at 97 % of it and
  is not refused again; a 429 naming no wait pauses new sends for the SDK's first backoff (0.5 s), so its
  retries get through. The 95 % is therefore judged after the learning (the run's second half); over a
  whole 12 s run it reaches about 90 % with 4-6 429s, all in the first seconds (in virtual time, 60 s at
  1,200 RPM: 95 % overall, 96 % after learning, 3-4 429s, no call lost). Where the limit is smaller (the
  free tier's 15 RPM), 60 calls take minutes: give the strategy the limit (`rate_limited --rpm`) instead.

"""


def markdown_page() -> str:
    """docs/profiles.md: every built-in profile, what it sets, what it follows and what is not documented."""
    lines = [
        PAGE_HEAD.rstrip("\n"),
        "",
        "| profile | RPM | TPM | RPD | rate-limit headers | 429 | quirks |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in builtin_names():
        p = load_profile(name)
        h = p.headers
        headers = "none" if h.on == "never" else f"`{h.template}` ({', '.join(h.fields)}), {_on(h.on)}"
        quirks = _quirks(p) or "–"
        limited = any(v is not None for v in (p.rpm, p.tpm, p.rpd))
        body = f"{p.rate_limit.status} {p.rate_limit.body}" if limited else f"no limits (errors: {p.rate_limit.body})"
        lines.append(
            f"| [{name}](#{name}) | {_num(p.rpm)} | {_num(p.tpm)} | {_num(p.rpd)} | {headers} | {body} | {quirks} |"
        )
    lines += ["", PAGE_RECORD + PAGE_ADAPTIVE.rstrip("\n"), ""]
    for name in builtin_names():
        p = load_profile(name)
        lines += [f"## {name}", "", p.description + ".", "", "| setting | value |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in rows(p) if key != "source"]
        lines += ["", f"**Follows:** {' '.join(p.source.split())}", ""]
        if p.undocumented:
            lines += [f"**Not documented:** {p.undocumented}", ""]
    return "\n".join(lines)


def _quirks(p: Profile) -> str:
    q = p.quirks
    out = []
    if q.connection_close:
        out.append("closes connections" + ("" if q.close_announced else " unannounced"))
    if not q.sse_done:
        out.append("no [DONE]")
    if q.stream_usage != "requested":
        out.append(f"usage {q.stream_usage}")
    if q.unknown_fields == "reject":
        out.append(f"unknown fields {q.unknown_refusal.status}")
    if q.rejected_fields:
        out.append(f"{len(q.rejected_fields)} fields refused")
    if q.json_mode_word:
        out.append("JSON mode needs 'json' in a message")
    if q.strict_schemas:
        out.append("strict schemas checked")
    if q.models == "empty":
        out.append("empty /v1/models")
    return ", ".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
