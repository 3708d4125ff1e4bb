"""A workload file: templates filled from each persona row, choices or a JSON schema, the request's settings.

```toml
system = "{persona}"                 # {column} placeholders; {persona} describes the row
question = "Do you own a cat, {name}?"
choices = ["yes", "no", "unsure"]    # or schema = { … } (a JSON Schema, or its JSON text)
answer_field = "answer"
response_format = "json_schema"      # json_schema (strict; default with choices/schema) | json_object | text
parse = true                         # text only: false keeps no answer
max_tokens = 120
temperature = 0.7
seed = 1
extra_body = { top_p = 0.9 }         # passed through unchanged
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Literal

from bench.core.ask import MAX_TOKENS, Ask, Mode
from bench.core.calls import REQUIRED_FIELDS, Respondent, WorkloadError, _persona_from_json
from bench.core.personas import PersonaTable

DEFAULT_WORKLOAD_FILE: Final = Path(str(files("bench.data").joinpath("election.toml")))
ResponseFormat = Literal["json_schema", "json_object", "text"]
FORMATS: Final = ("json_schema", "json_object", "text")
PERSONA: Final = "persona"  # the placeholder that describes the whole row
KEYS: Final = (
    "name",
    "system",
    "question",
    "choices",
    "schema",
    "answer_field",
    "response_format",
    "parse",
    "max_tokens",
    "temperature",
    "seed",
    "extra_body",
)
_NAME_RE: Final = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What every persona is asked and how the answer must come back (build with ``load_workload``)."""

    name: str
    source: str  # the file it came from, or the flags that made it
    system: str
    question: str
    choices: tuple[str, ...] = ()
    schema: Mapping[str, Any] | None = None
    answer_field: str = "answer"
    response_format: ResponseFormat | None = None  # None: json_schema with choices/schema, else json_object
    parse: bool = True
    max_tokens: int = MAX_TOKENS
    temperature: float | None = None
    seed: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def format(self) -> ResponseFormat:
        if self.response_format is not None:
            return self.response_format
        return "json_schema" if self.choices or self.schema is not None else "json_object"

    def answer_schema(self) -> dict[str, Any]:
        """The JSON Schema a json_schema request carries: the given one, or the choices as an enum."""
        if self.schema is not None:
            return dict(self.schema)
        return {
            "type": "object",
            "properties": {self.answer_field: {"type": "string", "enum": list(self.choices)}},
            "required": [self.answer_field],
            "additionalProperties": False,
        }

    def ask(self) -> Ask:
        """The request fields and answer check every call of this workload shares."""
        kind = self.format
        response: dict[str, Any] | None
        if kind == "json_schema":
            name = _NAME_RE.sub("_", self.name)[:64] or "answer"
            response = {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": self.answer_schema()},
            }
        else:
            response = {"type": "json_object"} if kind == "json_object" else None
        mode: Mode = "json" if kind != "text" else ("text" if self.parse else "none")
        return Ask(
            response_format=response,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
            extra_body=dict(self.extra_body),
            answer_field=self.answer_field,
            choices=self.choices or self._schema_choices(),
            mode=mode,
        )

    def _schema_choices(self) -> tuple[str, ...]:
        prop = (self.schema or {}).get("properties", {}).get(self.answer_field, {})
        enum = prop.get("enum") if isinstance(prop, dict) else None
        return tuple(str(v) for v in enum) if isinstance(enum, list) else ()

    def check(self) -> None:
        """What makes a workload unusable whatever the table (one-line WorkloadError)."""
        where = self.source
        for key in ("system", "question"):
            placeholders(getattr(self, key), key, where)
        if not self.question.strip():
            raise WorkloadError(f"{where}: question is empty")
        if not self.answer_field.strip():
            raise WorkloadError(f"{where}: answer_field is empty")
        if self.schema is not None:
            _check_schema(self.schema, where)
        if self.format == "text" and self.parse and not self.choices:
            raise WorkloadError(f"{where}: response_format text needs choices (or parse = false)")
        if self.format == "json_schema" and not self.choices and self.schema is None:
            raise WorkloadError(f"{where}: response_format json_schema needs choices or a schema")
        if self.format == "json_object" and "json" not in f"{self.system} {self.question}".casefold():
            # OpenAI answers such a request with a 400 (JSON mode must be asked for in the messages)
            raise WorkloadError(
                f"{where}: response_format json_object needs the word JSON in the system or question text "
                "(OpenAI refuses the request otherwise): say how to answer, or give choices"
            )

    def respondents(self, table: PersonaTable) -> list[Respondent]:
        """Each row's messages: the templates filled from its columns (missing columns refused first)."""
        for key in ("system", "question"):
            for name in placeholders(getattr(self, key), key, self.source):
                if name != PERSONA and name not in table.columns:
                    raise WorkloadError(
                        f"the {key} template names column '{name}', which {table.path} lacks "
                        f"(columns: {', '.join(table.columns)})"
                    )
        people: list[Respondent] = []
        for number, (pid, row) in enumerate(zip(table.ids, table.rows, strict=True), start=1):
            values = {k: _text(v) for k, v in row.items()}
            values.setdefault(PERSONA, describe(row, table.id_column))
            try:
                system = self.system.format_map(values).strip()
                question = self.question.format_map(values)
            except KeyError as exc:  # a JSONL row without a column other rows have
                raise WorkloadError(
                    f"{table.path}: row {number}: no value for column {exc} the templates use"
                ) from None
            messages: tuple[dict[str, str], ...] = ({"role": "system", "content": system},) if system else ()
            messages += ({"role": "user", "content": question},)
            people.append(Respondent(id=pid, messages=messages))
        return people


def _text(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def describe(row: Mapping[str, Any], id_column: str | None) -> str:
    """``{persona}``: our persona fields in the second person, or any other row as ``column: value`` pairs."""
    if all(key in row for key in REQUIRED_FIELDS):
        try:
            return _persona_from_json(dict(row), "row").describe()
        except WorkloadError:
            pass
    return "You are a survey respondent. " + "; ".join(
        f"{key.replace('_', ' ')}: {_text(value)}" for key, value in row.items() if key != id_column
    )


def placeholders(template: str, key: str, where: str) -> list[str]:
    """The column names a template uses (``{name}``; ``{{`` is a literal brace)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise WorkloadError(
            f"{where}: the {key} template is not a valid template ({exc}; write {{{{ for a brace)"
        ) from None
    names: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or name.isdigit():
            raise WorkloadError(f"{where}: the {key} template has '{{{name}}}'; name a column, as in {{age}}")
        # A format spec, an index, an attribute or a conversion would run in str.format: '{a.__class__}'
        # leaks Python, '{a:>999999999}' allocates gigabytes. Only the column's value is ever sent.
        if spec or conversion is not None or re.search(r"[.\[]", name):
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise WorkloadError(
                f"{where}: the {key} template has '{{{shown[:60]}}}': only plain {{column}} placeholders are "
                "allowed (no format specs, indexing, attributes or conversions; write {{ and }} for braces)"
            )
        names.append(name)
    return names


def _check_schema(schema: Mapping[str, Any], where: str) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise WorkloadError(f"{where}: schema is not valid JSON Schema at {path}: {exc.message[:160]}") from None
    if schema.get("type") != "object":
        raise WorkloadError(f'{where}: schema must describe an object ("type": "object"), as structured outputs need')


class _Table:
    """A TOML table read key by key, each error naming the file and key."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def fail(self, key: str, message: str) -> WorkloadError:
        return WorkloadError(f"{self.where}: {key}: {message}")

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"expected text, got {value!r}")
        return value

    def whole(self, key: str, minimum: int | None) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            raise self.fail(
                key, f"expected a whole number{f' ≥ {minimum}' if minimum is not None else ''}, got {value!r}"
            )
        return value


def choices_of(value: Any, where: str) -> tuple[str, ...]:
    """Choices from a list or comma-separated text: non-empty, distinct after case-folding."""
    items = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(c, str) for c in items):
        raise WorkloadError(f"{where}: choices: expected a list of texts, got {value!r}")
    choices = tuple(c.strip() for c in items if c.strip())
    if not choices:
        raise WorkloadError(f"{where}: choices: the list is empty; give at least one choice")
    folded = [c.casefold() for c in choices]
    if len(set(folded)) != len(folded):
        raise WorkloadError(f"{where}: choices: {', '.join(choices)} repeats a choice")
    return choices


def _schema_of(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise WorkloadError(f"{where}: schema: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise WorkloadError(f"{where}: schema: expected a JSON Schema object, got {type(value).__name__}")
    return value


def _format_of(value: Any, where: str) -> ResponseFormat | None:
    if value is None:
        return None
    if value not in FORMATS:
        raise WorkloadError(f"{where}: response_format: {value!r} is not one of {', '.join(FORMATS)}")
    chosen: ResponseFormat = value
    return chosen


def _temperature_of(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise WorkloadError(f"{where}: temperature: expected a number from 0 to 2, got {value!r}")
    return float(value)


def workload_from_mapping(data: Mapping[str, Any], where: str, *, name: str) -> Workload:
    """A workload from a TOML document's keys (unknown keys refused, so typos are caught)."""
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise WorkloadError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(KEYS)})")
    table = _Table(data, where)
    question = table.text("question")
    if question is None:
        raise WorkloadError(f"{where}: question: missing (the text every persona is asked)")
    extra = data.get("extra_body", {})
    if not isinstance(extra, dict):
        raise table.fail("extra_body", f"expected a table, got {extra!r}")
    parse = data.get("parse", True)
    if not isinstance(parse, bool):
        raise table.fail("parse", f"expected true or false, got {parse!r}")
    workload = Workload(
        name=table.text("name") or name,
        source=where,
        system=table.text("system") if "system" in data else "{persona}",  # type: ignore[arg-type]
        question=question,
        choices=choices_of(data["choices"], where) if "choices" in data else (),
        schema=_schema_of(data["schema"], where) if "schema" in data else None,
        answer_field=table.text("answer_field") or "answer",
        response_format=_format_of(data.get("response_format"), where),
        parse=parse,
        max_tokens=table.whole("max_tokens", 1) or MAX_TOKENS,
        temperature=_temperature_of(data.get("temperature"), where),
        seed=table.whole("seed", None),
        extra_body=extra,
    )
    workload.check()
    return workload


def load_workload(path: Path | None = None) -> Workload:
    """Read a workload file (the shipped election workload when ``path`` is None)."""
    source = path or DEFAULT_WORKLOAD_FILE
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkloadError(f"cannot read workload file {source}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{source}: not valid TOML ({exc})") from None
    return workload_from_mapping(data, str(source), name=source.stem)


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """The shortcut flags (``--question``, ``--choices``, …) laid over a workload file."""

    question: str | None = None
    choices: tuple[str, ...] | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: str | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in dataclasses.astuple(self))


def resolve(path: Path | None, overrides: Overrides) -> Workload:
    """The workload a run asks: a file (or, with ``--question`` alone, a blank one) with the flags laid over."""
    question, blank = overrides.question, False
    if path is None and question is not None:
        base, blank = Workload(name="question", source="--question", system="{persona}", question=question), True
    else:
        base = load_workload(path)
    changes: dict[str, Any] = {k: v for k, v in dataclasses.asdict(overrides).items() if v is not None}
    if blank:
        changes.pop("question")  # the blank workload's own
    if not changes:
        if blank:
            base.check()
        return base
    if "response_format" in changes:
        changes["response_format"] = _format_of(changes["response_format"], "--response-format")
    if "temperature" in changes:
        changes["temperature"] = _temperature_of(changes["temperature"], "--temperature")
    flags = " ".join(f"--{k.replace('_', '-')}" for k in changes)
    workload = dataclasses.replace(base, source=f"{base.source} with {flags}", **changes)
    workload.check()
    if base.choices and "choices" in changes and "question" not in changes and workload.format != "json_schema":
        # the question still asks for the file's answers; only a json_schema's enum tells the model new ones
        raise WorkloadError(
            f"--choices without --question: {base.source}'s question asks for {', '.join(base.choices)} "
            f"in {workload.format}: give --question too, or --response-format json_schema"
        )
    return workload
