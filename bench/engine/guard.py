"""Before the first call: is the endpoint paid, what would the run cost, can it be reached at all?"""

from __future__ import annotations

import csv
import ipaddress
import json
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from bench.workload import Call, estimate_prompt_tokens


class GuardError(ValueError):
    """A price table or endpoint that cannot be used (message is one line for the user)."""


@dataclass(frozen=True, kw_only=True)
class Price:
    """US dollars per million tokens."""

    input_per_m: float
    output_per_m: float


# OpenAI list prices (standard tier, USD per 1M tokens) as of mid-2025. Prices change: pass
# --price-table FILE or --price-in/--price-out for anything that matters.
PRICES: Final[Mapping[str, Price]] = {
    "gpt-4o-mini": Price(input_per_m=0.15, output_per_m=0.60),
    "gpt-4o": Price(input_per_m=2.50, output_per_m=10.00),
    "gpt-4.1": Price(input_per_m=2.00, output_per_m=8.00),
    "gpt-4.1-mini": Price(input_per_m=0.40, output_per_m=1.60),
    "gpt-4.1-nano": Price(input_per_m=0.10, output_per_m=0.40),
    "gpt-5": Price(input_per_m=1.25, output_per_m=10.00),
    "gpt-5-mini": Price(input_per_m=0.25, output_per_m=2.00),
    "gpt-5-nano": Price(input_per_m=0.05, output_per_m=0.40),
    "o3": Price(input_per_m=2.00, output_per_m=8.00),
    "o3-mini": Price(input_per_m=1.10, output_per_m=4.40),
    "o4-mini": Price(input_per_m=1.10, output_per_m=4.40),
    "gpt-3.5-turbo": Price(input_per_m=0.50, output_per_m=1.50),
}


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


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GuardError(f"{where}: price {value!r} is not a number") from None
    if not number >= 0:  # also rejects NaN
        raise GuardError(f"{where}: price must be 0 or more, got {value!r}")
    return number


MAX_PRICE_TABLE_BYTES: Final = 1024 * 1024


def load_price_table(path: Path) -> dict[str, Price]:
    """Prices from JSON (``{"model": {"input": 0.15, "output": 0.6}}``) or CSV
    (``model,input_per_1m,output_per_1m``), in dollars per million tokens."""
    try:
        with path.open("rb") as handle:
            data_bytes = handle.read(MAX_PRICE_TABLE_BYTES + 1)
    except OSError as exc:
        raise GuardError(f"cannot read price table {path}: {exc.strerror or exc}") from None
    if len(data_bytes) > MAX_PRICE_TABLE_BYTES:
        raise GuardError(f"{path}: larger than {MAX_PRICE_TABLE_BYTES} bytes (is this a price table?)")
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise GuardError(f"{path}: not UTF-8 text (is this a price table?)") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GuardError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise GuardError(f"{path}: expected an object of model → {{input, output}}")
        table: dict[str, Price] = {}
        for model, entry in data.items():
            if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
                raise GuardError(f"{path}: model {model!r} needs 'input' and 'output' prices")
            where = f"{path}: {model}"
            table[model] = Price(
                input_per_m=_number(entry["input"], where), output_per_m=_number(entry["output"], where)
            )
        return table
    table = {}
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].strip().lower() == "model":
            continue
        where = f"{path}:{lineno}"
        if len(row) != 3:
            raise GuardError(f"{where}: expected model,input_per_1m,output_per_1m")
        table[row[0].strip()] = Price(input_per_m=_number(row[1], where), output_per_m=_number(row[2], where))
    return table


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """The exact model, else the longest known prefix (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``)."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """What a run would send: prompt tokens estimated, completion tokens at most ``max_tokens``."""

    calls: int
    model: str
    prompt_tokens: int
    max_completion_tokens: int
    price: Price | None

    @property
    def cost_usd(self) -> float | None:
        """The most the calls would cost (every answer at ``max_tokens``), retries not counted."""
        if self.price is None:
            return None
        return (
            self.prompt_tokens * self.price.input_per_m + self.max_completion_tokens * self.price.output_per_m
        ) / 1e6

    def describe(self) -> str:
        tokens = f"~{self.prompt_tokens:,} prompt + ≤{self.max_completion_tokens:,} completion tokens"
        cost = self.cost_usd
        if cost is None or self.price is None:
            money = f"no price known for {self.model} (pass --price-in/--price-out or --price-table)"
        else:
            shown = f"{cost:,.2f}" if cost >= 0.01 else f"{cost:.4f}"
            money = (
                f"≤ ${shown} at ${self.price.input_per_m:g}/${self.price.output_per_m:g} "
                "per 1M tokens in/out; SDK retries can add more"
            )
        return f"{self.calls:,} calls to model {self.model}: {tokens}; {money}"


def estimate(calls: Iterable[Call], model: str, max_tokens: int, price: Price | None) -> Estimate:
    count = prompt = 0
    for call in calls:
        count += 1
        prompt += estimate_prompt_tokens(call.messages)
    return Estimate(
        calls=count, model=model, prompt_tokens=prompt, max_completion_tokens=count * max_tokens, price=price
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
