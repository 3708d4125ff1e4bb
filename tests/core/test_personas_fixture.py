"""bench/data/personas.jsonl: reproducible from fixtures/generate_personas.py, and loadable."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bench.core.calls import DEFAULT_PERSONAS_FILE, load_personas

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "bench" / "data" / "personas.jsonl"
GENERATOR = ROOT / "fixtures" / "generate_personas.py"
KEYS = [
    "id",
    "name",
    "age",
    "gender",
    "occupation",
    "city",
    "state",
    "education",
    "media_diet",
    "household_income",
    "religion",
    "marital_status",
    "top_issue",
]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_personas", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def committed() -> list[dict[str, Any]]:
    return [json.loads(text) for text in FIXTURE.read_text(encoding="utf-8").splitlines()]


def test_fixture_is_the_workload_default() -> None:
    assert DEFAULT_PERSONAS_FILE == FIXTURE


def test_regenerating_with_defaults_reproduces_committed_bytes(tmp_path: Path) -> None:
    out = tmp_path / "personas.jsonl"
    gen.write(out, gen.generate(5000, 2024))
    assert out.read_bytes() == FIXTURE.read_bytes()


def test_cli_defaults_reproduce_committed_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.jsonl"
    assert gen.main(["--out", str(out)]) == 0
    assert out.read_bytes() == FIXTURE.read_bytes()
    assert "5000" in capsys.readouterr().out


def test_different_seed_gives_different_file(tmp_path: Path) -> None:
    out = tmp_path / "other.jsonl"
    gen.write(out, gen.generate(5000, 2025))
    assert out.read_bytes() != FIXTURE.read_bytes()
    assert len(out.read_bytes().splitlines()) == 5000


def test_file_format() -> None:
    data = FIXTURE.read_bytes()
    assert data.endswith(b"\n")
    assert b"\r" not in data
    assert data.count(b"\n") == 5000
    data.decode("utf-8")  # raises if not UTF-8


def test_ids_and_key_order(committed: list[dict[str, Any]]) -> None:
    assert len(committed) == 5000
    assert [p["id"] for p in committed] == list(range(5000))
    bad = [p["id"] for p in committed if list(p) != KEYS]
    assert bad == []


def test_persona_zero_is_sophia_martinez(committed: list[dict[str, Any]]) -> None:
    sophia = committed[0]
    assert sophia["name"] == "Sophia Martinez"
    assert sophia["age"] == 40
    assert sophia["gender"] == "female"
    assert sophia["occupation"] == "emergency-room nurse"
    assert sophia["city"] == "San Francisco"
    assert sophia["state"] == "CA"


def test_personas_are_distinct(committed: list[dict[str, Any]]) -> None:
    keys = [(p["name"], p["age"], p["city"], p["occupation"]) for p in committed]
    assert len(set(keys)) == len(keys)


def test_field_values_are_plausible(committed: list[dict[str, Any]]) -> None:
    assert all(18 <= p["age"] <= 90 for p in committed)
    assert all(re.fullmatch(r"[A-Z]{2}", p["state"]) for p in committed)
    assert all(2 <= len(p["media_diet"]) <= 3 for p in committed)
    assert all(len(set(p["media_diet"])) == len(p["media_diet"]) for p in committed)
    assert all(p["household_income"].startswith(("$", "Under $")) for p in committed)
    assert all(isinstance(p[k], str) and p[k] for p in committed for k in KEYS if k not in ("id", "age", "media_diet"))


def test_fixture_is_diverse(committed: list[dict[str, Any]]) -> None:
    assert len({(p["city"], p["state"]) for p in committed}) >= 50
    assert len({p["occupation"] for p in committed}) >= 60
    assert len({p["name"].split()[0] for p in committed}) >= 200
    assert len({p["name"].split()[-1] for p in committed}) >= 150
    assert len({m for p in committed for m in p["media_diet"]}) >= 25
    assert {"female", "male"} <= {p["gender"] for p in committed}
    ages = [p["age"] for p in committed]
    assert sum(a < 30 for a in ages) > 500
    assert sum(a >= 65 for a in ages) > 500


def test_load_personas_loads_everything() -> None:
    personas = load_personas(FIXTURE)
    assert len(personas) == 5000
    assert [p.id for p in personas] == list(range(5000))
    sophia = personas[0]
    assert (sophia.name, sophia.age, sophia.city, sophia.state) == (
        "Sophia Martinez",
        40,
        "San Francisco",
        "CA",
    )
    assert dict(sophia.extra).keys() == {"household_income", "religion", "marital_status", "top_issue"}
    assert "Sophia Martinez" in sophia.describe()


def test_generate_small_counts_and_bad_count() -> None:
    one = gen.generate(1, 7)
    assert [p["name"] for p in one] == ["Sophia Martinez"]
    assert gen.generate(50, 2024) == gen.generate(5000, 2024)[:50]
    with pytest.raises(ValueError, match="at least 1"):
        gen.generate(0, 2024)
