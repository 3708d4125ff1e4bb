"""Before the first call: is the endpoint paid, what would the run cost, can it be reached at all?"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from bench.core.calls import Call
from bench.core.prices import Price, PriceError, price_for, shipped_prices
from bench.core.prices import load_price_table as read_price_table
from bench.core.tokens import HEURISTIC, prompt_estimator

__all__ = [
    "PRICES",
    "Estimate",
    "GuardError",
    "Price",
    "estimate",
    "is_local",
    "load_price_table",
    "preflight",
    "price_for",
    "resolve_price",
]


class GuardError(ValueError):
    """A price table or endpoint that cannot be used (message is one line for the user)."""


# OpenAI list prices shipped as package data (bench/data/prices.json, dated). Prices change:
# pass --price-table FILE or --price-in/--price-out for anything that matters.
PRICES: Final[Mapping[str, Price]] = shipped_prices().models


def url_problem(url: str) -> str | None:
    """Why an endpoint URL cannot be used (one line that never repeats a credential), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.username is not None or parts.password is not None:
        return "the URL holds credentials before '@': remove them and give the key in an environment variable"
    if not parts.hostname:
        return "the URL has no host"
    return None


def is_local(endpoint: str) -> bool:
    """True for the built-in mock and for loopback URLs (nothing there can bill anyone)."""
    if endpoint == "mock":
        return True
    host = (urlsplit(endpoint).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it could resolve anywhere, so treat it as remote
        return False


def load_price_table(path: Path) -> dict[str, Price]:
    """Prices from a JSON or CSV file (see ``bench.core.prices.load_price_table``); GuardError when unusable."""
    try:
        return read_price_table(path)
    except PriceError as exc:
        raise GuardError(str(exc)) from None


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """What a run would send: prompt tokens estimated, completion tokens at most ``max_tokens``."""

    calls: int
    model: str
    prompt_tokens: int
    max_completion_tokens: int
    price: Price | None
    estimator: str = HEURISTIC  # what counted the prompt tokens
    batch_calls: int = 0  # of ``calls``, those sent through the Batch API (priced at ``batch_discount``)
    batch_prompt_tokens: int = 0
    batch_discount: float = 1.0

    @property
    def cost_usd(self) -> float | None:
        """The most the calls would cost (every answer at ``max_tokens``), retries not counted."""
        if self.price is None:
            return None
        saved = 1.0 - self.batch_discount  # the share of a batch call's tokens not paid
        prompt = self.prompt_tokens - saved * self.batch_prompt_tokens
        completion = self.max_completion_tokens - saved * self.batch_calls * self._max_tokens
        return (prompt * self.price.input_per_m + completion * self.price.output_per_m) / 1e6

    @property
    def _max_tokens(self) -> float:
        return self.max_completion_tokens / self.calls if self.calls else 0.0

    def describe(self) -> str:
        tokens = (
            f"~{self.prompt_tokens:,} prompt (counted by {self.estimator}) + "
            f"≤{self.max_completion_tokens:,} completion tokens"
        )
        cost = self.cost_usd
        if cost is None or self.price is None:
            money = f"no price known for {self.model} (pass --price-in/--price-out or --price-table)"
        else:
            shown = f"{cost:,.2f}" if cost >= 0.01 else f"{cost:.4f}"
            batch = f", {self.batch_calls:,} batch calls at {self.batch_discount:g}×" if self.batch_calls else ""
            money = (
                f"≤ ${shown} at ${self.price.input_per_m:g}/${self.price.output_per_m:g} "
                f"per 1M tokens in/out{batch}; SDK retries can add more"
            )
        return f"{self.calls:,} calls to model {self.model}: {tokens}; {money}"


def estimate(
    calls: Iterable[Call],
    model: str,
    max_tokens: int,
    price: Price | None,
    *,
    batch: Iterable[Call] = (),
    batch_discount: float = 1.0,
) -> Estimate:
    """``calls`` counted and priced; those also in ``batch`` (Batch API cells) at ``batch_discount``."""
    counter = prompt_estimator(model)
    count = prompt = 0
    for call in calls:
        count += 1
        prompt += counter.count(call.messages)
    batched = batch_prompt = 0
    for call in batch:
        batched += 1
        batch_prompt += counter.count(call.messages)
    return Estimate(
        calls=count,
        model=model,
        prompt_tokens=prompt,
        max_completion_tokens=count * max_tokens,
        price=price,
        estimator=counter.name,
        batch_calls=batched,
        batch_prompt_tokens=batch_prompt,
        batch_discount=batch_discount,
    )


def preflight(base_url: str, timeout_s: float = 3.0) -> str | None:
    """Why a TCP connection to the endpoint fails (one line), or None when it opens."""
    parts = urlsplit(base_url)
    host = parts.hostname
    if not host:
        return f"'{base_url}' has no host"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"'{base_url}' has an invalid port"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.gaierror:
        return f"cannot reach {base_url}: cannot resolve host '{host}'"
    except TimeoutError:
        return f"cannot reach {base_url}: no answer from {host}:{port} within {timeout_s:g} s"
    except OSError as exc:
        return f"cannot reach {base_url}: {(exc.strerror or str(exc)).lower()} ({host}:{port})"


def resolve_price(model: str, table_file: Path | None, price_in: float | None, price_out: float | None) -> Price | None:
    """--price-in/--price-out, else the model in --price-table or the built-in table, else None."""
    if (price_in is None) != (price_out is None):
        raise GuardError("--price-in and --price-out go together")
    if price_in is not None and price_out is not None:
        return Price(input_per_m=price_in, output_per_m=price_out)
    table = dict(PRICES)
    if table_file is not None:
        table.update(load_price_table(table_file))
    return price_for(model, table)
