from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from bench.mock.command import mock_server_command
from bench.mock.config import MockConfig


def test_defaults_are_valid() -> None:
    config = MockConfig()
    assert (config.host, config.port, config.latency) == ("127.0.0.1", 0, "lognormal:2.6,0.25")
    assert config.latency_model().mean == 2.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"port": 70000}, "port must be between 0 and 65535", id="port"),
        pytest.param({"latency": "slow"}, "bad latency spec 'slow'", id="latency"),
        pytest.param({"rpm": 0}, "rpm must be at least 1", id="rpm"),
        pytest.param({"tpm": -5}, "tpm must be at least 1", id="tpm"),
        pytest.param({"max_concurrency": 0}, "max_concurrency must be at least 1", id="max-concurrency"),
        pytest.param({"quota": -1}, "quota must be 0 or more", id="quota"),
        pytest.param({"burst_seconds": 0.0}, "burst_seconds must be a positive number", id="burst"),
        pytest.param({"burst_seconds": 3.0}, "burst_seconds sizes the rpm/tpm buckets", id="burst-no-bucket"),
        pytest.param({"rpm": 60, "tokens_burst_seconds": 9.0}, "sizes the tpm bucket", id="tokens-burst-no-tpm"),
        pytest.param({"rpd_used": 3}, "rpd_used needs rpd", id="rpd-used-no-rpd"),
        pytest.param({"error_rate": 1.5}, "error_rate must be between 0 and 1", id="error-rate"),
        pytest.param({"reset_rate": -0.1}, "reset_rate must be between 0 and 1", id="reset-rate"),
        pytest.param({"error_rate": 0.6, "timeout_rate": 0.6}, "fault rates add up to 1.2", id="rates-sum"),
        pytest.param({"api_key": ""}, "api_key must not be empty", id="empty-key"),
        pytest.param({"models": ("gpt-4o", "")}, "models must be non-empty names", id="empty-model"),
    ],
)
def test_bad_values_raise_one_line_value_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        MockConfig(**kwargs)
    assert "\n" not in str(info.value)


def _parse(args: list[str]) -> MockConfig:
    ctx = mock_server_command.make_context("mock-server", args)
    params = dict(ctx.params)
    params.pop("watch_stdin")
    return MockConfig(**params)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(MockConfig(), id="defaults"),
        pytest.param(MockConfig(port=8123, latency="fixed:0.05", seed=4), id="basic"),
        pytest.param(
            MockConfig(
                rpm=600,
                tpm=90_000,
                burst_seconds=2.5,
                max_concurrency=8,
                error_rate=0.1,
                timeout_rate=0.05,
                reset_rate=0.02,
                malformed_rate=0.03,
                models=("gpt-4o-mini", "gpt-4o"),
                quota=100,
            ),
            id="everything",
        ),
    ],
)
def test_to_args_round_trips_through_the_cli(config: MockConfig) -> None:
    assert _parse(config.to_args()) == config


def test_api_key_travels_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = MockConfig(api_key="sk-secret-value")
    args = config.to_args(api_key_env="MY_MOCK_KEY")
    assert "sk-secret-value" not in " ".join(args)
    monkeypatch.setenv("MY_MOCK_KEY", "sk-secret-value")
    assert _parse(args) == config


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--latency", "soon"], "bad latency spec 'soon'", id="latency"),
        pytest.param(["--error-rate", "2"], "--error-rate", id="rate-range"),
        pytest.param(["--rpm", "0"], "--rpm", id="rpm"),
        pytest.param(["--error-rate", "0.7", "--reset-rate", "0.7"], "fault rates add up to 1.4", id="rates-sum"),
        pytest.param(["--api-key-required", "NO_SUCH_VAR_FOR_MOCK"], "NO_SUCH_VAR_FOR_MOCK is not set", id="key-env"),
        pytest.param(["--models", " , "], "comma-separated model names", id="models"),
    ],
)
def test_cli_rejects_bad_values_with_exit_2(args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_FOR_MOCK", raising=False)
    result = CliRunner().invoke(mock_server_command, args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output
