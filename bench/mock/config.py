"""The mock server's configuration, validated on construction and turned back into CLI flags."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from bench.mock.latency import DEFAULT_LATENCY, LatencyModel
from bench.mock.profile import Profile, load_profile
from bench.mock.tokens import TokenTiming

API_KEY_ENV: Final = "MOCK_API_KEY"
DEFAULT_BATCH_DELAY: Final = "fixed:10"
FAULT_FIELDS: Final = ("error_rate", "timeout_rate", "reset_rate", "malformed_rate")


@dataclass(frozen=True, slots=True, kw_only=True)
class MockConfig:
    """How the mock behaves; every field has a CLI flag of the same name (``--error-rate`` …)."""

    host: str = "127.0.0.1"
    port: int = 0
    latency: str = DEFAULT_LATENCY
    seed: int = 0
    rpm: int | None = None
    tpm: int | None = None
    burst_seconds: float = 1.0
    tokens_burst_seconds: float | None = None  # the tokens bucket's depth, when not burst_seconds
    max_concurrency: int | None = None
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    rate_limit_rate: float = 0.0
    api_key: str | None = None
    models: tuple[str, ...] = ()
    quota: int | None = None
    ttft: str | None = None
    itl: str | None = None
    output_tokens: str | None = None
    batch_delay: str = DEFAULT_BATCH_DELAY  # how long a Batch API job takes (the accelerated clock)
    rpd: int | None = None  # a day's request budget, stated in the requests headers
    rpd_used: int = 0  # how much of it is spent when the server starts (and after a reset)
    # A provider's dialect: a built-in profile's name or a TOML file's path (bench.mock.profile). Its
    # limits and timing fill the fields left unset (None; burst_seconds and latency at their defaults):
    # options given win.
    profile: str | None = None
    profile_faults: tuple[tuple[str, float], ...] = ()  # the profile's optional refusals, each at a rate

    def __post_init__(self) -> None:
        if self.profile is not None:
            self._take_profile_limits(load_profile(self.profile))
        elif self.profile_faults:
            raise ValueError("profile_faults need a profile (they name its [faults])")
        if not self.host:
            raise ValueError("host must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        LatencyModel.parse(self.latency)
        for name in ("ttft", "itl", "output_tokens"):
            spec = getattr(self, name)
            if spec is not None:
                LatencyModel.parse(spec)
        try:
            LatencyModel.parse(self.batch_delay)
        except ValueError as exc:
            raise ValueError(f"batch_delay: {exc}") from None
        if self.rpd_used < 0 or (self.rpd is not None and self.rpd_used > self.rpd):
            raise ValueError(f"rpd_used must be between 0 and rpd, got {self.rpd_used}")
        for name in ("rpm", "tpm", "max_concurrency", "rpd"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or unset), got {value}")
        if self.quota is not None and self.quota < 0:
            raise ValueError(f"quota must be 0 or more (or unset), got {self.quota}")
        for name in ("burst_seconds", "tokens_burst_seconds"):
            seconds = getattr(self, name)
            if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"{name} must be a positive number, got {seconds}")
        if self.rpd_used and self.rpd is None:
            raise ValueError("rpd_used needs rpd: there is no day's budget to have spent")
        if self.burst_seconds != 1.0 and not (self.rpm or self.tpm):
            raise ValueError("burst_seconds sizes the rpm/tpm buckets: give rpm or tpm (or a profile with limits)")
        if self.tokens_burst_seconds is not None and not self.tpm:
            raise ValueError("tokens_burst_seconds sizes the tpm bucket: give tpm (or a profile with one)")
        for name in FAULT_FIELDS:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if not 0.0 <= self.rate_limit_rate <= 1.0:
            raise ValueError(f"rate_limit_rate must be between 0 and 1, got {self.rate_limit_rate}")
        total = sum(getattr(self, name) for name in FAULT_FIELDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {total:g}; they must add up to at most 1")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty (leave it unset to accept any key)")
        if any(not isinstance(m, str) or not m for m in self.models):
            raise ValueError("models must be non-empty names")

    def _take_profile_limits(self, profile: Profile) -> None:
        for name, value in profile.limits().items():
            unset = getattr(self, name) == (1.0 if name == "burst_seconds" else None)
            if value is not None and unset:
                object.__setattr__(self, name, value)  # frozen: resolved once, here
        for name, spec in profile.timing.items():
            if getattr(self, name) == (DEFAULT_LATENCY if name == "latency" else None):
                object.__setattr__(self, name, spec)
        total = 0.0
        for name, rate in self.profile_faults:
            if name not in profile.faults:
                known = ", ".join(profile.faults) or "none"
                raise ValueError(f"profile_faults: {name!r} is not a fault of profile {profile.name} (it has: {known})")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"profile_faults: {name} must be between 0 and 1, got {rate}")
            total += rate
        if total > 1.0 + 1e-9:
            raise ValueError(f"profile_faults add up to {total:g}; they must add up to at most 1")

    def dialect_profile(self) -> Profile | None:
        return None if self.profile is None else load_profile(self.profile)

    def latency_model(self) -> LatencyModel:
        return LatencyModel.parse(self.latency, seed=self.seed)

    def token_timing(self) -> TokenTiming | None:
        """The streaming timing model, when any of ``ttft``/``itl``/``output_tokens`` is set."""
        if self.ttft is None and self.itl is None and self.output_tokens is None:
            return None
        return TokenTiming.parse(ttft=self.ttft, itl=self.itl, output_tokens=self.output_tokens, seed=self.seed)

    def to_args(self, *, api_key_env: str = API_KEY_ENV) -> list[str]:
        """CLI flags reproducing this config; the API key itself travels in ``api_key_env``."""
        args: list[str] = []
        defaults = MockConfig()
        for field in fields(self):
            value = getattr(self, field.name)
            flag = "--" + field.name.replace("_", "-")
            if field.name == "api_key":
                if value is not None:
                    args += ["--api-key-required", api_key_env]
            elif field.name == "models":
                if value:
                    args += [flag, ",".join(value)]
            elif field.name == "profile_faults":
                for name, rate in value:
                    args += ["--fault", f"{name}={rate:g}"]
            elif field.name in ("host", "port", "latency", "seed") or value != getattr(defaults, field.name):
                if value is not None:
                    args += [flag, str(value)]
        return args


def public_settings(config: MockConfig | None) -> dict[str, Any] | None:
    """A mock's configuration for run.json, without the key it may require."""
    if config is None:
        return None
    return {k: v for k, v in asdict(config).items() if k != "api_key"}
