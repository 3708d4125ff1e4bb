"""What tokens cost: the price table shipped with the package (dated), files that override it, cost per call."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

PRICES_RESOURCE: Final = "prices.json"


class PriceError(ValueError):
    """A price table that cannot be used (message is one line for the user)."""


@dataclass(frozen=True, kw_only=True)
class Price:
    """US dollars per million tokens."""

    input_per_m: float
    output_per_m: float


@dataclass(frozen=True, kw_only=True)
class PriceTable:
    """Prices per model, the date they were read off, and the Batch API's factor (0.5: half price)."""

    models: Mapping[str, Price]
    as_of: str = ""
    batch_discount: float = 0.5


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PriceError(f"{where}: price {value!r} is not a number") from None
    if not number >= 0:  # also rejects NaN
        raise PriceError(f"{where}: price must be 0 or more, got {value!r}")
    return number


def _models_from_json(data: Any, where: str) -> dict[str, Price]:
    if not isinstance(data, dict):
        raise PriceError(f"{where}: expected an object of model → {{input, output}}")
    table: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise PriceError(f"{where}: model {model!r} needs 'input' and 'output' prices")
        spot = f"{where}: {model}"
        table[model] = Price(input_per_m=_number(entry["input"], spot), output_per_m=_number(entry["output"], spot))
    return table


def parse_price_json(text: str, where: str) -> PriceTable:
    """``{"model": {"input", "output"}}``, or the shipped shape ``{"as_of", "batch_discount", "models": {…}}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        discount = _number(data.get("batch_discount", 0.5), f"{where}: batch_discount")
        return PriceTable(
            models=_models_from_json(data["models"], where), as_of=str(data.get("as_of", "")), batch_discount=discount
        )
    return PriceTable(models=_models_from_json(data, where))


def shipped_prices() -> PriceTable:
    """The table in ``bench/data/prices.json`` (read with importlib.resources, so installs find it)."""
    text = resources.files("bench.data").joinpath(PRICES_RESOURCE).read_text(encoding="utf-8")
    return parse_price_json(text, f"bench/data/{PRICES_RESOURCE}")


MAX_PRICE_TABLE_BYTES: Final = 1024 * 1024


def load_price_table(path: Path) -> dict[str, Price]:
    """Prices from JSON (``{"model": {"input": 0.15, "output": 0.6}}``) or CSV
    (``model,input_per_1m,output_per_1m``), in dollars per million tokens."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PRICE_TABLE_BYTES + 1)
    except OSError as exc:
        raise PriceError(f"cannot read price table {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_PRICE_TABLE_BYTES:
        raise PriceError(f"{path}: larger than {MAX_PRICE_TABLE_BYTES} bytes (is this a price table?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PriceError(f"{path}: not UTF-8 text (is this a price table?)") from None
    if path.suffix.lower() == ".json":
        return dict(parse_price_json(text, str(path)).models)
    table: dict[str, Price] = {}
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].strip().lower() == "model":
            continue
        where = f"{path}:{lineno}"
        if len(row) != 3:
            raise PriceError(f"{where}: expected model,input_per_1m,output_per_1m")
        table[row[0].strip()] = Price(input_per_m=_number(row[1], where), output_per_m=_number(row[2], where))
    return table


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """The exact model, else the longest known prefix (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``)."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


def call_cost(
    price: Price | None, prompt_tokens: int | None, completion_tokens: int | None, factor: float = 1.0
) -> float | None:
    """USD for one call from the usage the endpoint returned (None without a price or any usage)."""
    if price is None or (prompt_tokens is None and completion_tokens is None):
        return None
    dollars = (prompt_tokens or 0) * price.input_per_m + (completion_tokens or 0) * price.output_per_m
    return factor * dollars / 1e6
