"""Several endpoints in one run: ``URL,key_env=K,rpm=R`` specs, and a client that routes by stated limits.

Calls go to each endpoint in proportion to its limit (its rpm, else its tpm; round-robin when
none states one), by smooth weighted round-robin: over any stretch of calls each endpoint's share
is within one call of its weight. Each outcome names the endpoint that answered (a label, never a key).
Strategies that pace (``rate_limited``, ``adaptive``) see each endpoint as a ``Lane`` (its share of
the cell's rate, its own rate-limit feedback) and pin calls to one with ``complete_on``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from bench.clients.base import AsyncChatClient, Endpoint, Outcome, RequestSettings
from bench.clients.feedback import RateLimitFeedback, ReportsRateLimits
from bench.core.calls import Call

SPEC_KEYS = ("key_env", "rpm", "tpm", "label")
MAX_LIMIT_PER_MIN = 1e9  # a stated rpm/tpm above this is a typo (or inf), and sums of them overflow the routing
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_env_problem(name: str) -> str | None:
    """Why ``name`` cannot be an environment variable's name (a pasted key is never echoed), or None."""
    if ENV_NAME.fullmatch(name):
        return None
    looks_like_key = name.startswith(("sk-", "sk_")) or len(name) > 40
    what = "looks like a key, not a variable's name" if looks_like_key else "is not an environment variable name"
    return f"the value given {what} (it is not shown)"


class EndpointSpecError(ValueError):
    """An ``--endpoint`` value that cannot be used (message is one line for the user)."""


@dataclass(frozen=True, kw_only=True)
class EndpointSpec:
    """One ``--endpoint``: where, which environment variable holds its key, its stated limits."""

    url: str
    key_env: str | None = None
    rpm: float | None = None
    tpm: float | None = None
    label: str = ""

    @property
    def weight(self) -> float:
        return self.rpm or self.tpm or 1.0


def parse_endpoint_spec(text: str) -> EndpointSpec:
    """``https://host/v1,key_env=KEY_A,rpm=500[,tpm=…][,label=a]`` (or ``mock``)."""
    url, *options = [part.strip() for part in text.split(",")]
    for option in options:  # a key pasted as key_env= is refused before any message could echo it
        name, _, value = option.partition("=")
        if name == "key_env" and value and (problem := key_env_problem(value)) is not None:
            raise EndpointSpecError(f"key_env: {problem}")
    if url != "mock" and not url.startswith(("http://", "https://")):
        raise EndpointSpecError(f"'{url}' is neither 'mock' nor an http(s) URL")
    found: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or name not in SPEC_KEYS or not value:
            raise EndpointSpecError(f"'{option}' in '{text}': expected one of {', '.join(k + '=…' for k in SPEC_KEYS)}")
        found[name] = value
    limits: dict[str, float] = {}
    for name in ("rpm", "tpm"):
        if name in found:
            try:
                limits[name] = float(found[name])
            except ValueError:
                raise EndpointSpecError(f"{name}={found[name]} in '{text}' is not a number") from None
            if not limits[name] > 0:
                raise EndpointSpecError(f"{name} in '{text}' must be positive")
            if not (math.isfinite(limits[name]) and limits[name] <= MAX_LIMIT_PER_MIN):
                raise EndpointSpecError(f"{name} in '{text}' must be at most {MAX_LIMIT_PER_MIN:.0e} a minute")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise EndpointSpecError(f"not a valid URL ({exc})") from None
    if parts.username is not None or parts.password is not None:  # the key would be printed and stored
        raise EndpointSpecError(
            "the URL holds credentials before '@': remove them and give the key in an environment variable"
        )
    label = found.get("label") or (parts.netloc if url != "mock" else "mock")
    return EndpointSpec(url=url, key_env=found.get("key_env"), label=label, **limits)


def label_all(specs: Sequence[EndpointSpec]) -> list[EndpointSpec]:
    """Specs whose labels are unique (a second ``host:port`` becomes ``host:port#2``)."""
    seen: dict[str, int] = {}
    out: list[EndpointSpec] = []
    for spec in specs:
        seen[spec.label] = seen.get(spec.label, 0) + 1
        out.append(spec if seen[spec.label] == 1 else replace(spec, label=f"{spec.label}#{seen[spec.label]}"))
    return out


def resolve_keys(specs: Sequence[EndpointSpec], default_key: str) -> list[str]:
    """Each endpoint's key: its ``key_env`` variable, else the run's key (EndpointSpecError when unset)."""
    keys = []
    for spec in specs:
        if spec.key_env is None:
            keys.append(default_key)
            continue
        key = os.environ.get(spec.key_env, "")
        if not key:
            raise EndpointSpecError(f"environment variable {spec.key_env} (for {spec.label}) is not set or empty")
        keys.append(key)
    return keys


@dataclass
class Router:
    """Smooth weighted round-robin (nginx's): deterministic, each share within one call of its weight."""

    weights: Sequence[float]
    _current: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self._current = [0.0] * len(self.weights)

    def next(self) -> int:
        total = sum(self.weights)
        for index, weight in enumerate(self.weights):
            self._current[index] += weight
        best = max(range(len(self.weights)), key=lambda i: self._current[i])
        self._current[best] -= total
        return best


@dataclass(frozen=True, kw_only=True)
class RoutedEndpoint:
    """An endpoint of a pooled run: where, its label, its weight."""

    endpoint: Endpoint = field(repr=False)
    label: str
    weight: float = 1.0
    rpm: float | None = None  # the limits it states (its ``--endpoint`` spec)
    tpm: float | None = None


@dataclass(frozen=True, kw_only=True)
class Lane:
    """One endpoint of a cell as a strategy sees it: its label, the pace it is given, what its answers say."""

    index: int
    label: str
    rpm: float | None = None
    tpm: float | None = None
    rate_limits: RateLimitFeedback | None = field(default=None, repr=False, compare=False)


def stated_total(values: Sequence[float | None]) -> float | None:
    """The sum of the endpoints' stated limits when every one states it (else None)."""
    if not values or any(value is None for value in values):
        return None
    return sum(value for value in values if value is not None)


def states_limits(specs: Sequence[EndpointSpec]) -> bool:
    """Whether the endpoints state a rate to pace at: every one an rpm, or every one a tpm."""
    return any(stated_total(values) is not None for values in ([s.rpm for s in specs], [s.tpm for s in specs]))


def split_limit(total: float | None, stated: Sequence[float | None], weights: Sequence[float]) -> list[float | None]:
    """Each endpoint's share of a cell's rate: in proportion to its stated limit when all state one,
    else to its routing weight (None everywhere without a total)."""
    if total is None:
        return [None] * len(stated)
    shares = stated if stated_total(stated) is not None else weights
    whole = sum(share or 0.0 for share in shares)
    return [total * (share or 0.0) / whole for share in shares]


class PooledClient:
    """One client per endpoint; each call goes where the router says, its outcome says where."""

    def __init__(
        self,
        make: Callable[[Endpoint, RequestSettings, int], AsyncChatClient],
        endpoints: Sequence[RoutedEndpoint],
        settings: RequestSettings,
        pool_size: int,
    ) -> None:
        self._labels = [e.label for e in endpoints]
        self._clients = [make(e.endpoint, settings, pool_size) for e in endpoints]
        self._router = Router([e.weight for e in endpoints])

    @property
    def feedback(self) -> list[RateLimitFeedback | None]:
        """Each endpoint's own rate-limit feedback (None for a client that keeps none)."""
        return [c.rate_limits if isinstance(c, ReportsRateLimits) else None for c in self._clients]

    async def complete(self, call: Call) -> Outcome:
        return await self.complete_on(self._router.next(), call)

    async def complete_on(self, index: int, call: Call) -> Outcome:
        """Send ``call`` to endpoint ``index`` (a strategy pacing each endpoint chose it)."""
        outcome = await self._clients[index].complete(call)
        return replace(outcome, endpoint=self._labels[index])

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
