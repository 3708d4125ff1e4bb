"""Provider profiles as a client meets them: the real mock process, the openai SDK, raw httpx for what it hides."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx
import openai
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.cli.profile import markdown_page
from bench.clients.feedback import RateLimitInfo, parse_reset
from bench.mock import MockConfig, MockServer
from bench.mock.profile import builtin_names, load_profile
from tests.support.servers import MockServerFactory

ASK: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
RATE_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


def sdk(server: MockServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)


def create(server: MockServer, **extra: Any) -> Any:
    """One chat completion through the SDK (no retries), its client closed after."""
    with sdk(server) as client:
        return client.chat.completions.create(**{**ASK, **extra})


def create_raw(server: MockServer) -> Any:
    with sdk(server) as client:
        return client.chat.completions.with_raw_response.create(**ASK)


def post(server: MockServer, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(server.base_url + "/chat/completions", json=body or ASK, timeout=10)


def refused(server: MockServer) -> httpx.Response:
    """A 429: a one-request bucket (rpm 60, burst 1 s) answers the second request at once with a refusal."""
    for _ in range(3):
        response = post(server)
        if response.status_code == 429:
            return response
    raise AssertionError("no 429 from a one-request bucket")


def rate_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith(RATE_HEADER_PREFIXES)}


@pytest.mark.parametrize("name", builtin_names())
def test_every_built_in_profile_loads_and_cites_a_dated_source(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert "20" in profile.source
    assert len(profile.source) > 80
    MockConfig(profile=name)  # and the mock takes it


def test_there_are_the_nine_built_in_profiles() -> None:
    assert set(builtin_names()) == {
        "openai-tier1",
        "openai-tier5",
        "azure-openai",
        "anthropic-openai-compat",
        "google-openai-compat",
        "groq",
        "vllm",
        "llamacpp",
        "transformers-serve",
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param('[limits]\nrpm = "fast"\n', "limits.rpm: expected a whole number", id="type"),
        pytest.param("[limits]\nrpn = 5\n", "limits.rpn: unknown key", id="unknown-key"),
        pytest.param("[headers]\nreset_format = 'epoch'\n", "headers.reset_format: expected one of", id="choice"),
        pytest.param("[rate_limit]\nmessage = '{nope}'\n", "rate_limit.message: bad placeholder", id="placeholder"),
        pytest.param("[faults.x]\nstatus = 200\n", "faults.x.finish_reason", id="200-needs-finish"),
        pytest.param("[headers]\ntemplate = 'x-{kind}'\n", "headers.template: must contain", id="template"),
        pytest.param("[limits\n", "not TOML", id="toml"),
    ],
)
def test_a_bad_profile_file_is_refused_in_one_line_naming_the_key(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=says) as info:
        MockConfig(profile=str(path))
    assert "\n" not in str(info.value)
    result = CliRunner().invoke(cli, ["profile", "show", str(path)])
    assert result.exit_code == 2
    assert says.split(":")[0] in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_profile_name_is_refused_naming_the_built_ins() -> None:
    with pytest.raises(ValueError, match="unknown profile 'openai-tier9'.*openai-tier5"):
        MockConfig(profile="openai-tier9")
    with pytest.raises(ValueError, match="'nope' is not a fault of profile azure-openai"):
        MockConfig(profile="azure-openai", profile_faults=(("nope", 0.1),))


def test_options_given_with_a_profile_win_and_the_rest_come_from_it() -> None:
    config = MockConfig(profile="openai-tier1", rpm=600)
    assert (config.rpm, config.tpm, config.burst_seconds) == (600, 200_000, 1.0)
    assert MockConfig(profile="groq").rpd == 14_400
    assert MockConfig().rpm is None  # no profile: nothing changes
    again = MockConfig(**vars_of(config))
    assert again == config


def vars_of(config: MockConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def test_profile_list_and_show_print_one_short_table() -> None:
    listed = CliRunner().invoke(cli, ["profile", "list"])
    assert listed.exit_code == 0
    assert all(name in listed.output for name in builtin_names())
    shown = CliRunner().invoke(cli, ["profile", "show", "anthropic-openai-compat"])
    assert shown.exit_code == 0
    for words in ("anthropic-ratelimit-{kind}-{field}", "rfc3339", "fault overloaded", "529", "source"):
        assert words in shown.output


def test_the_mock_server_command_takes_a_profile_and_faults() -> None:
    config = MockConfig(latency="zero", profile="azure-openai", profile_faults=(("content_filter", 0.5),))
    assert config.to_args()[-4:] == ["--profile", "azure-openai", "--fault", "content_filter=0.5"]


def test_openai_tier1_sends_openai_headers_on_every_reply_and_its_429(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", profile="openai-tier1", rpm=60)
    ok = create_raw(server)
    assert ok.headers["x-ratelimit-limit-requests"] == "60"
    assert ok.headers["x-ratelimit-limit-tokens"] == "200000"
    assert ok.headers["x-ratelimit-reset-requests"].endswith("s")  # "1s", "980ms": OpenAI's durations
    with pytest.raises(openai.RateLimitError) as info:
        create(server)
    error = info.value
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert int(error.response.headers["retry-after-ms"]) > 0
    assert error.response.headers["retry-after"] == "1"
    limits = server.stats().limits
    assert limits is not None
    assert limits.tpm == 200_000


@pytest.mark.parametrize("profile", ["openai-tier1", "openai-tier5", None])
def test_json_mode_no_message_asks_for_is_a_400_from_openai_profiles_only(
    mock_server_factory: MockServerFactory, profile: str | None
) -> None:
    """OpenAI refuses ``response_format: json_object`` unless a message says "json"; the profiles that play
    OpenAI do too (a client tested against them meets the 400 before production does), the bare mock does not."""
    server = mock_server_factory(latency="zero", profile=profile)
    json_mode = {"response_format": {"type": "json_object"}}
    asked = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "hi"}]
    assert create(server, **{**json_mode, "messages": asked}).choices  # a message says it: answered
    if profile is None:
        assert create(server, **json_mode).choices
        return
    with pytest.raises(openai.BadRequestError) as info:
        create(server, **json_mode)
    assert info.value.status_code == 400
    assert info.value.type == "invalid_request_error"
    assert "must contain the word 'json'" in info.value.message
    assert server.stats().received == 2  # the refusal is counted as received, like any answered request


def _strict(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "pets", "strict": strict, "schema": schema}}


CLOSED: Final = {"type": "object", "properties": {"pet": {"type": "string"}}, "required": ["pet"]}


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        pytest.param(CLOSED, "In context=(), 'additionalProperties' is required", id="open-object"),
        pytest.param({**CLOSED, "additionalProperties": False, "required": []}, "Missing 'pet'", id="not-all-required"),
        pytest.param(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"home": {"type": "object", "properties": {}}},
                "required": ["home"],
            },
            "In context=('properties', 'home'), 'additionalProperties'",
            id="nested-open-object",
        ),
    ],
)
def test_a_strict_schema_openai_would_refuse_is_a_400_from_openai_profiles_only(
    mock_server_factory: MockServerFactory, schema: dict[str, Any], says: str
) -> None:
    """Strict Structured Outputs take only closed objects that require every key; OpenAI's profiles refuse the
    rest as OpenAI does, while the bare mock answers, and a closed schema or ``strict: false`` is answered."""
    openai_like, bare = mock_server_factory(latency="zero", profile="openai-tier1"), mock_server_factory(latency="zero")
    with pytest.raises(openai.BadRequestError) as info:
        create(openai_like, response_format=_strict(schema))
    assert info.value.status_code == 400
    assert says in info.value.message
    assert "Invalid schema for response_format 'pets': In context=" in info.value.message
    assert create(openai_like, response_format=_strict(schema, strict=False)).choices
    closed = {**CLOSED, "additionalProperties": False}
    assert create(openai_like, response_format=_strict(closed)).choices
    assert create(bare, response_format=_strict(schema)).choices


def test_openai_tier5_states_its_high_limits(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", profile="openai-tier5")
    ok = post(server)
    assert (ok.headers["x-ratelimit-limit-requests"], ok.headers["x-ratelimit-limit-tokens"]) == ("30000", "150000000")


@pytest.mark.slow
def test_azure_refuses_with_its_body_both_retry_headers_and_only_remaining_headers(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(latency="zero", profile="azure-openai", rpm=60)
    assert set(rate_headers(post(server))) == {"x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"}
    response = refused(server)
    error = response.json()["error"]
    assert error["code"] == "429"
    assert set(error) == {"code", "message"}
    assert f"Please retry after {response.headers['retry-after']} seconds" in error["message"]
    assert "retry-after-ms" in response.headers
    assert set(rate_headers(response)) == {"x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["content_filter", "content_filter_finish"])
def test_azure_content_filter_refusals_are_faults_a_profile_offers(
    mock_server_factory: MockServerFactory, fault: str
) -> None:
    server = mock_server_factory(latency="zero", profile="azure-openai", profile_faults=((fault, 1.0),))
    if fault == "content_filter":
        with pytest.raises(openai.BadRequestError) as info:
            create(server)
        assert info.value.code == "content_filter"
    else:
        completion = create(server)
        assert completion.choices[0].finish_reason == "content_filter"
        assert completion.choices[0].message.content == ""
    assert server.stats().injected[fault] == 1


def test_anthropic_compat_sends_rfc3339_resets_and_retry_after_in_seconds(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(latency="zero", profile="anthropic-openai-compat", rpm=60)
    ok = post(server)
    headers = rate_headers(ok)
    assert headers["anthropic-ratelimit-requests-limit"] == "60"
    assert headers["anthropic-ratelimit-tokens-limit"] == "30000"
    reset = datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"])
    assert reset.tzinfo is not None
    assert 0 <= reset.timestamp() - time.time() <= 2
    assert not any(k.startswith("x-ratelimit-") for k in ok.headers)
    response = refused(server)
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "1"
    assert "retry-after-ms" not in response.headers
    info = RateLimitInfo.from_headers(0.0, 429, response.headers)  # the harness reads this dialect
    assert info.limit_requests == 60
    assert info.reset_requests_s is not None
    assert 0 < info.reset_requests_s <= 1.5


def test_anthropic_compat_overloaded_is_a_529_without_retry_after(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", profile="anthropic-openai-compat", profile_faults=(("overloaded", 1),))
    with pytest.raises(openai.APIStatusError) as info:
        create(server)
    assert info.value.status_code == 529
    assert info.value.body == {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}
    assert "retry-after" not in info.value.response.headers
    assert server.stats().http_429 == 0


@pytest.mark.slow
def test_google_compat_refuses_with_a_list_body_and_no_headers(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", profile="google-openai-compat", rpm=60)
    assert rate_headers(post(server)) == {}
    response = refused(server)
    assert response.json() == [
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
            }
        }
    ]
    assert rate_headers(response) == {}
    assert "retry-after" not in response.headers
    with pytest.raises(openai.RateLimitError):  # the SDK still sees a 429, whatever the body
        create(server)


def test_groq_states_the_day_in_requests_headers_and_retry_after_only_on_429s(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(latency="zero", profile="groq", rpm=60, tpm=100_000)
    ok = post(server)
    assert ok.headers["x-ratelimit-limit-requests"] == "14400"  # RPD
    assert ok.headers["x-ratelimit-limit-tokens"] == "100000"  # TPM
    assert "retry-after" not in ok.headers
    response = refused(server)
    assert response.headers["retry-after"] == "1"
    assert "retry-after-ms" not in response.headers
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        create(server, logprobs=True)


def test_groq_at_its_own_tpm_admits_what_its_tokens_headers_say_is_left(mock_server_factory: MockServerFactory) -> None:
    """6,000 TPM held for a minute: twenty 250-token requests at once fit (a second's 100 tokens held none)."""
    server = mock_server_factory(latency="zero", profile="groq", rpm=6000)  # requests out of the way
    big = {**ASK, "max_tokens": 240}  # ~250 tokens charged: prompt and max_tokens
    statuses = [post(server, big).status_code for _ in range(20)]
    assert statuses == [200] * 20
    stats = server.stats()
    assert stats.http_429 == 0
    assert stats.limits is not None
    assert (stats.limits.tpm, stats.limits.tokens_burst_seconds) == (6000, 60.0)
    left = int(post(server, big).headers["x-ratelimit-remaining-tokens"])
    assert left < 6000 - 20 * 240  # what was spent, counted out of the minute's limit


@pytest.mark.slow
def test_vllm_ignores_unknown_fields_and_sends_no_rate_limit_headers(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", profile="vllm")
    ok = post(server, {**ASK, "guided_json": {}, "ignore_eos": False})
    assert ok.status_code == 200
    assert rate_headers(ok) == {}
    server.stop()
    faulty = mock_server_factory(latency="zero", profile="vllm", profile_faults=(("context_length", 1),))
    response = post(faulty)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (400, "BadRequestError")
    assert "maximum context length" in error["message"]


@pytest.mark.slow
def test_llamacpp_context_overflow_has_its_own_error_type(mock_server_factory: MockServerFactory) -> None:
    server = mock_server_factory(latency="zero", profile="llamacpp", profile_faults=(("context_length", 1),))
    with pytest.raises(openai.BadRequestError) as info:
        create(server)
    assert info.value.body == {
        "code": 400,
        "message": "request (9000 tokens) exceeds the available context size (8192 tokens), try increasing it",
        "type": "exceed_context_size_error",
    }


def test_transformers_serve_refuses_fields_with_422_and_streams_without_done(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(latency="zero", profile="transformers-serve")
    unknown = post(server, {**ASK, "foo": 1})
    assert (unknown.status_code, unknown.json()) == (422, {"detail": "Unexpected keys in the request: {'foo'}"})
    unused = post(server, {**ASK, "response_format": {"type": "json_object"}})
    assert (unused.status_code, unused.json()) == (
        422,
        {"detail": "Unsupported fields in the request: {'response_format'}"},
    )
    assert httpx.get(server.base_url + "/models").json()["data"] == []
    raw = post(server, {**ASK, "stream": True}).text
    events = [line.removeprefix("data: ") for line in raw.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    assert last["usage"]["completion_tokens"] > 0
    with sdk(server) as client:  # the SDK copes with the missing [DONE]
        chunks = list(client.chat.completions.create(**ASK, stream=True))
    assert chunks[-1].usage is not None


def test_a_user_profile_can_close_the_connection_after_each_reply(tmp_path: Path) -> None:
    path = tmp_path / "closing.toml"
    path.write_text('name = "closing"\n[quirks]\nconnection_close = true\n')
    with MockServer(MockConfig(latency="zero", profile=str(path))) as server:
        assert post(server).headers["connection"] == "close"
        streamed = post(server, {**ASK, "stream": True})
        assert streamed.headers["connection"] == "close"
        assert streamed.text.rstrip().endswith("[DONE]")


def test_reset_headers_parse_as_durations_and_rfc3339_times() -> None:
    assert parse_reset("6m0s") == 360.0
    assert (
        parse_reset("2026-12-04T10:00:01.500Z", now=datetime.fromisoformat("2026-12-04T10:00:00Z").timestamp()) == 1.5
    )
    assert parse_reset("not a time") is None


def test_the_profiles_page_is_made_from_the_profile_files() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert page == markdown_page()
    listed = CliRunner().invoke(cli, ["profile", "list", "--markdown"])
    assert listed.output == page
    for name in builtin_names():  # each profile: what it sets, what it follows, what is not documented
        section = page.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert "| limits |" in section
        assert "**Follows:**" in section
        assert "**Not documented:**" in section
