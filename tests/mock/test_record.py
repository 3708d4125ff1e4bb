"""``bench profile record``: a probe of an endpoint written as a profile the mock replays.

The round trip: the mock started with a built-in profile and a timing model is recorded; the mock started
with the recording is recorded again; both recordings must state the original's limits, dialect and quirks,
and its timing within these tolerances (the mock draws each call's timing from its key, so the draws are
the same on every run; what varies is the client's own overhead on a busy machine):

- rpm, tpm: exact (read from the headers); burst_seconds: within two requests (2 × 60/rpm s: a busy client
  sends a wave of 20 over some milliseconds, while the bucket refills);
- 429 status, body shape, type, code, retry headers; header template, fields, reset format, when sent: equal;
- quirks (connection close, [DONE], usage, unknown fields, /v1/models): equal;
- output tokens: exact; of what the mock drew for the probe's calls (their timing is drawn from their keys):
  the TTFT mean within -5 % / +30 % (the client's own overhead only adds), its σ within 0.1; the ITL mean
  within -10 % / +30 % (its σ as recorded includes the client's read jitter and is not judged);
- the replay's TTFT and ITL means within -20 % / +35 % and -20 % / +40 % of the original model (16 calls).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from statistics import NormalDist
from typing import Any, cast

import openai
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.core.calls import calls_for_count, load_personas
from bench.mock import MockConfig, MockServer
from bench.mock.answers import persona_key, repeat_from_call_id
from bench.mock.latency import LatencyModel
from bench.mock.profile import load_profile
from bench.mock.record import (
    ProbePlan,
    Recording,
    Refused,
    Reply,
    _body,
    _field_template,
    _template,
    dialect,
    fit,
    limits,
    reset_format,
)
from tests.support.closing_server import closing_server

TIMING: dict[str, Any] = {"ttft": "lognormal:0.1,0.3", "itl": "lognormal:0.008,0.3", "output_tokens": "fixed:8"}
CALLS = 16


def record(endpoint: str, out: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["profile", "record", "--endpoint", endpoint, "--model", "gpt-4o-mini", "--out", str(out), *args], env=env
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = tomllib.loads(out.read_text())
    load_profile(str(out))  # and the mock takes it
    return data


# A fake key, put together here so that no key-shaped string stands in the source (secret scanners).
KEY = "-".join(("sk", "test", "DoNotStoreMe", "0123456789"))


def stored_nothing_secret(text: str, server: MockServer) -> None:
    """The recording holds no key, no prompt and no answer (the answers asked for again, as the probe got them)."""
    assert KEY not in text
    assert "DoNotStoreMe" not in text
    calls = calls_for_count(load_personas(), 3)
    with openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=5) as client:
        ask = client.chat.completions.with_raw_response.create
        answers = [ask(model="gpt-4o-mini", messages=cast(Any, list(c.messages))).parse() for c in calls]
    for call in calls:
        for message in call.messages:
            for line in message["content"].splitlines():
                assert len(line) < 12 or line not in text
    for answer in answers:
        content = answer.choices[0].message.content
        assert content
        assert content not in text
    assert "Harris" not in text
    assert "Trump" not in text


def served(config: MockConfig) -> dict[str, LatencyModel]:
    """The timing the mock drew for the probe's timed calls (drawn from each call's key), fitted as the
    recorder fits: what a perfect recording of those calls would say."""
    timing = config.token_timing()
    assert timing is not None
    calls = calls_for_count(load_personas(), CALLS)
    plans = [timing.plan(f"{persona_key(list(c.messages))}:{repeat_from_call_id(c.call_id)}", 10, 120) for c in calls]
    return {
        "ttft": LatencyModel.parse(fit([p.ttft_s for p in plans]) or ""),
        "itl": LatencyModel.parse(fit([g for p in plans for g in p.gaps_s]) or ""),
    }


def near(value: str, want: LatencyModel, low: float, high: float) -> bool:
    return want.mean * (1 - low) <= LatencyModel.parse(value).mean <= want.mean * (1 + high)


@pytest.mark.slow
def test_a_recorded_profile_replays_the_original_limits_dialect_quirks_and_timing(tmp_path: Path) -> None:
    original = MockConfig(latency="zero", profile="openai-tier1", rpm=600, **TIMING)
    with MockServer(original) as server:
        first = record(server.base_url, tmp_path / "first.toml", "--calls", str(CALLS), "--burst")
    # Another seed: the replay's draws are independent of the original's (the same seed would replay the
    # same standard normals through the recorded model, compounding the first sample's bias).
    replay = MockConfig(latency="zero", seed=1, profile=str(tmp_path / "first.toml"))
    with MockServer(replay) as server:
        second = record(server.base_url, tmp_path / "second.toml", "--calls", str(CALLS), "--burst")
    for got, config in ((first, original), (second, replay)):
        assert (got["limits"]["rpm"], got["limits"]["tpm"]) == (600, 200_000)
        assert abs(got["limits"]["burst_seconds"] - original.burst_seconds) <= 2 * 60 / 600 + 1e-9, got["limits"]
        assert got["rate_limit"] == {
            "status": 429,
            "body": "openai",
            "type": "requests",
            "code": "rate_limit_exceeded",
            "retry_after": ["retry-after-ms", "retry-after"],
        }
        assert got["headers"] == {
            "template": "x-ratelimit-{field}-{kind}",
            "fields": ["limit", "remaining", "reset"],
            "reset_format": "duration",
            "on": "every",
        }
        assert got["quirks"] == {
            "connection_close": False,
            "sse_done": True,
            "stream_usage": "requested",
            "models": "list",
            "unknown_fields": "ignore",
            "json_mode_word": True,  # OpenAI's 400 for JSON mode no message asks for, recorded and replayed
        }
        timing, drawn = got["latency"], served(config)
        assert timing["output_tokens"] == "fixed:8"
        assert near(timing["ttft"], drawn["ttft"], 0.05, 0.30), (timing, drawn)
        assert abs(LatencyModel.parse(timing["ttft"]).sigma - drawn["ttft"].sigma) <= 0.1, (timing, drawn)
        assert near(timing["itl"], drawn["itl"], 0.10, 0.30), (timing, drawn)
    # And the replay's timing model is the original's, within what N calls can tell apart.
    for name, (low, high) in {"ttft": (0.2, 0.35), "itl": (0.2, 0.4)}.items():
        assert near(second["latency"][name], LatencyModel.parse(TIMING[name]), low, high), second["latency"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("profile", "headers", "refusal"),
    [
        pytest.param(
            "anthropic-openai-compat",
            {"template": "anthropic-ratelimit-{kind}-{field}", "reset_format": "rfc3339", "on": "every"},
            {"body": "openai", "type": "rate_limit_error", "retry_after": ["retry-after"]},
            id="anthropic",
        ),
        pytest.param(
            "azure-openai",
            {"template": "x-ratelimit-{field}-{kind}", "fields": ["remaining"], "on": "every"},
            {"body": "azure", "code": "429", "retry_after": ["retry-after-ms", "retry-after"]},
            id="azure",
        ),
        pytest.param(
            "google-openai-compat",
            {"on": "never"},
            {"body": "google", "type": "RESOURCE_EXHAUSTED", "retry_after": []},
            id="google",
        ),
        pytest.param(
            "transformers-serve",
            {"on": "never"},
            None,
            id="transformers-serve",
        ),
    ],
)
def test_recording_reads_each_dialect(
    tmp_path: Path, profile: str, headers: dict[str, Any], refusal: dict[str, Any] | None
) -> None:
    built_in = load_profile(profile)
    rpm = 600 if built_in.rpm else None
    tpm = 100_000_000 if built_in.tpm else None  # the requests limit is what the burst meets, at once
    with MockServer(MockConfig(latency="zero", profile=profile, rpm=rpm, tpm=tpm, api_key=KEY)) as server:
        args = ["--calls", "3", *(["--burst"] if built_in.rpm else []), "--api-key-env", "PROBE_KEY"]
        got = record(server.base_url, tmp_path / "p.toml", *args, env={"PROBE_KEY": KEY})
        stored_nothing_secret((tmp_path / "p.toml").read_text(), server)
    assert {k: got["headers"].get(k) for k in headers} == headers
    if refusal is not None:
        assert {k: got["rate_limit"].get(k) for k in refusal} == refusal
        assert got["rate_limit"]["status"] == 429
    if profile == "azure-openai":  # no limit headers: the limit inferred from the most remaining
        assert got["limits"]["rpm"] == 600
    if profile == "google-openai-compat":
        assert "limits not recorded" in got["source"]
        assert got["limits"] == {}
    q = built_in.quirks
    assert got["quirks"]["sse_done"] is q.sse_done
    assert got["quirks"]["models"] == q.models
    assert got["quirks"]["unknown_fields"] == q.unknown_fields
    if "response_format" in q.rejected_fields:  # refused as a field: nothing said of JSON mode
        assert "json_mode_word" not in got["quirks"]
        assert "the JSON-mode probe answered 422: JSON mode not judged" in got["source"]
    else:
        assert got["quirks"]["json_mode_word"] is q.json_mode_word
    expected_usage = {"requested": "requested", "final-chunk": "final-chunk", "never": "never"}[q.stream_usage]
    assert got["quirks"]["stream_usage"] == expected_usage
    if profile == "transformers-serve":
        assert got["quirks"]["unknown_refusal"] == {
            "status": 422,
            "body": "detail",
            "message": "Unexpected keys in the request: {fields}",
            "retry_after": [],
        }
        assert load_profile(str(tmp_path / "p.toml")).quirks.unknown_refusal.message.startswith("Unexpected keys")


@pytest.mark.slow
def test_a_server_that_closes_after_each_streamed_reply_unannounced_is_recorded_so(tmp_path: Path) -> None:
    """The issue's llama.cpp criterion, against a stand-in that streams as llama-server does
    (tests/support/closing_server.py; llama.cpp itself: tests/mock/test_llama_cpp_recording.py)."""
    with closing_server() as (url, counts):
        got = record(url, tmp_path / "local.toml", "--calls", "4")
    assert counts["streams"] == 5  # the timed calls and the one asking for usage
    assert got["quirks"]["connection_close"] is True
    assert got["quirks"]["close_announced"] is False  # what a pooling client trips over
    assert got["quirks"]["stream_usage"] == "requested"
    assert got["quirks"]["sse_done"] is True
    assert got["quirks"]["unknown_fields"] == "ignore"
    assert "closed without announcing it" in got["source"]
    assert got["headers"] == {"on": "never"}
    assert load_profile(str(tmp_path / "local.toml")).quirks.close_announced is False


@pytest.mark.slow
def test_a_probe_request_on_a_connection_the_server_had_closed_is_sent_again_on_a_new_one(tmp_path: Path) -> None:
    """llama-server's FIN trails its last streamed bytes: a request sent at once on the pooled connection
    meets it closed, before any answer. Held back 50 ms here, so that every such request does; each is sent
    again on a new connection (the probe used to stop with 'Server disconnected without sending a response')."""
    with closing_server(linger_s=0.05) as (url, counts):
        got = record(url, tmp_path / "local.toml", "--calls", "3")
    assert counts["chats"] == 3 + 1 + 1 + 1  # timed, usage asked for, the unknown field, JSON mode: once each
    assert got["quirks"]["connection_close"] is True
    assert got["quirks"]["unknown_fields"] == "ignore"
    assert got["quirks"]["models"] == "list"


def test_record_refuses_a_bad_endpoint_and_an_existing_file_in_one_line(tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["profile", "record", "--endpoint", "ftp://x", "--model", "m"])
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1
    (tmp_path / "p.toml").write_text("")
    args = [
        "profile",
        "record",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--out",
        str(tmp_path / "p.toml"),
    ]
    exists = CliRunner().invoke(cli, args)
    assert exists.exit_code == 2
    assert "exists" in exists.output


def test_record_asks_before_probing_a_paid_endpoint(tmp_path: Path) -> None:
    args = ["profile", "record", "--endpoint", "https://api.example.invalid/v1", "--model", "gpt-4o-mini"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "p.toml"), "--burst"], env={"OPENAI_API_KEY": "k"})
    assert result.exit_code == 2
    assert "at most 73 calls" in result.output  # what it will send is said first
    assert "refusing to send 73 calls" in result.output
    assert not (tmp_path / "p.toml").exists()


def test_the_dialect_and_limits_are_read_from_the_headers_kept() -> None:
    rec = Recording(host="h", model="m", plan=ProbePlan(calls=2, burst=True))
    rec.replies = [
        Reply(
            status=200,
            rate={
                "x-ratelimit-limit-requests": "14400",
                "x-ratelimit-remaining-requests": "14399",
                "x-ratelimit-reset-requests": "6s",
                "x-ratelimit-limit-tokens": "6000",
                "x-ratelimit-reset-tokens": "2h59m50s",  # a long tokens reset says nothing of the requests
            },
            retry={},
            cost=100,
        ),
        Reply(status=200, rate={"x-ratelimit-reset-requests": "2h59m56.64s"}, retry={}, cost=100),
    ]
    d = dialect(rec)
    assert (d.template, d.fields, d.reset_format, d.on) == (
        "x-ratelimit-{field}-{kind}",
        ("limit", "remaining", "reset"),
        "duration",
        "every",
    )
    found, how = limits(rec, d)
    assert found == {"rpd": 14_400, "tpm": 6_000}  # Groq: the requests headers state the day
    assert any("day" in h for h in how)
    assert any("no 429 within a burst" in h for h in how)


@pytest.mark.parametrize(("most", "limit"), [(119, 120), (600, 600), (599, 600), (37, 38)])
def test_a_limit_inferred_from_remaining_prefers_the_round_figure(most: int, limit: int) -> None:
    rec = Recording(host="h", model="m", plan=ProbePlan(calls=2))
    rec.replies = [Reply(status=200, rate={"x-ratelimit-remaining-requests": str(most)}, retry={}, cost=100)]
    found, _ = limits(rec, dialect(rec))
    assert found == {"rpm": limit}


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        ("6m0s", "duration"),
        ("20ms", "duration"),
        ("1.5", "seconds"),
        ("2026-12-04T10:00:01.5Z", "rfc3339"),
        ("soon", None),
    ],
)
def test_reset_formats_are_told_apart(value: str, fmt: str | None) -> None:
    assert reset_format(value) == fmt


def test_error_bodies_are_told_apart_and_their_wording_becomes_a_template() -> None:
    assert _body([{"error": {"code": 429, "message": "m", "status": "RESOURCE_EXHAUSTED"}}])[:2] == (
        "google",
        "RESOURCE_EXHAUSTED",
    )
    assert _body({"error": {"code": "429", "message": "m"}})[0] == "azure"
    assert _body({"error": {"code": 400, "message": "m", "type": "exceed_context_size_error"}})[0] == "llamacpp"
    assert _body({"detail": "m"})[0] == "detail"
    assert _body({"error": {"message": "m", "type": "t", "param": None, "code": None}})[0] == "openai"
    reply = Reply(status=429, rate={"anthropic-ratelimit-requests-limit": "50"}, retry={"retry-after": "7"}, cost=1)
    text = "Rate of {x}: limit 50 for claude-x exceeded. Please retry after 7 seconds."
    assert (
        _template(text, "claude-x", reply)
        == "Rate of {{x}}: limit {limit} for {model} exceeded. Please retry after {seconds} seconds."
    )
    assert _field_template("Unexpected keys in the request: {'f'}", "f") == "Unexpected keys in the request: {fields}"
    assert isinstance(Refused(status=429, body="openai"), Refused)


def test_fit_is_fixed_for_equal_samples_and_a_lognormal_otherwise() -> None:
    assert fit([8, 8, 8, 8], whole=True) == "fixed:8"
    logs = [NormalDist(0.0, 0.5).inv_cdf((i + 0.5) / 200) for i in range(200)]
    spread = LatencyModel.parse(fit([math.exp(z) for z in logs]) or "")
    assert spread.kind == "lognormal"
    assert spread.sigma == pytest.approx(0.5, abs=0.02)
    assert spread.mean == pytest.approx(math.exp(0.5**2 / 2), rel=0.02)
    assert fit([]) is None
