"""The persona workload: personas × repeats → Calls, and the answers they come back with."""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, Final, TypeAlias, overload

from bench.core.ask import DEFAULT_ASK, Ask, read_answer
from bench.core.ask import MAX_TOKENS as MAX_TOKENS  # re-exported: clients and overhead read it here

# Package data (read through importlib.resources), so an installed bench finds it from any directory.
DEFAULT_PERSONAS_FILE: Final = Path(str(files("bench.data").joinpath("personas.jsonl")))
QUESTION: Final = (
    "The 2024 US presidential election is tomorrow. Who would you vote for, "
    "Kamala Harris or Donald Trump? Answer only with a JSON object: "
    '{"vote": "Harris" or "Trump", "reason": "<one sentence, in your own voice>"}.'
)
VOTES: Final = ("Harris", "Trump")
REQUIRED_FIELDS: Final = ("id", "name", "age", "gender", "occupation", "city", "state", "education")


class WorkloadError(ValueError):
    """The persona file or the workload shape is unusable (message is one line for the user)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Persona:
    id: int
    name: str
    age: int
    gender: str
    occupation: str
    city: str
    state: str
    education: str
    media_diet: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """The persona in the second person, as the system prompt."""
        text = (
            f"You are {self.name}, a {self.age}-year-old {self.gender} {self.occupation} "
            f"living in {self.city}, {self.state}. Education: {self.education}."
        )
        if self.media_diet:
            text += f" You get your news mostly from {', '.join(self.media_diet)}."
        for key, value in self.extra:
            text += f" {key.replace('_', ' ').capitalize()}: {value}."
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One logical request: a persona asked the question for the ``repeat``-th time."""

    call_id: str
    persona_id: int | str
    repeat: int
    messages: tuple[dict[str, str], ...]
    ask: Ask = DEFAULT_ASK  # the request fields and answer check the workload's calls share


@dataclass(frozen=True, slots=True, kw_only=True)
class Respondent:
    """One row of a persona table with its messages already filled in."""

    id: int | str
    messages: tuple[dict[str, str], ...]


def call_id_for(persona_id: int | str, repeat: int) -> str:
    if isinstance(persona_id, int):
        return f"p{persona_id:05d}-r{repeat:03d}"
    return f"p{persona_id}-r{repeat:03d}"


def _persona_from_json(obj: Any, where: str) -> Persona:
    if not isinstance(obj, dict):
        raise WorkloadError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in obj]
    if missing:
        raise WorkloadError(f"{where}: missing field(s) {', '.join(missing)}")
    pid, age = obj["id"], obj["age"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (pid, age)):
        raise WorkloadError(f"{where}: 'id' and 'age' must be integers")
    media = obj.get("media_diet") or []
    if isinstance(media, str):
        media = [media]
    known = set(REQUIRED_FIELDS) | {"media_diet"}
    extra = tuple((k, str(v)) for k, v in obj.items() if k not in known and isinstance(v, str | int | float))
    return Persona(
        id=pid,
        name=str(obj["name"]),
        age=age,
        gender=str(obj["gender"]),
        occupation=str(obj["occupation"]),
        city=str(obj["city"]),
        state=str(obj["state"]),
        education=str(obj["education"]),
        media_diet=tuple(str(m) for m in media),
        extra=extra,
    )


MAX_PLAN_CALLS: Final = 10_000_000  # far beyond any benchmark; checked before a call is built


def check_plan_size(total: int, what: str = "this run") -> None:
    """Refuse a workload too large to build (``--calls 2000000000`` would need gigabytes first)."""
    if total > MAX_PLAN_CALLS:
        raise WorkloadError(f"{what} would make {total:,} calls, more than the {MAX_PLAN_CALLS:,} the harness builds")


MAX_LINE_BYTES: Final = 64 * 1024  # a persona is a few hundred bytes; /dev/zero is one endless line


def text_lines(handle: IO[bytes], path: Path) -> Iterator[str]:
    """The file's lines as text, refusing bytes that are not UTF-8 and lines no persona needs."""
    lineno = 0
    while line := handle.readline(MAX_LINE_BYTES + 1):
        lineno += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise WorkloadError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES} bytes (is this a persona file?)")
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            raise WorkloadError(f"{path}:{lineno}: not UTF-8 text (save the file as UTF-8)") from None


def load_personas(path: Path = DEFAULT_PERSONAS_FILE, limit: int | None = None) -> list[Persona]:
    """Read a JSONL persona file, naming the file and line of the first bad entry."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise WorkloadError(f"cannot read personas file {path}: {exc.strerror or exc}") from None
    personas: list[Persona] = []
    seen: set[int] = set()
    with handle:
        for lineno, line in enumerate(text_lines(handle, path), start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{where}: not valid JSON ({exc.msg})") from None
            persona = _persona_from_json(obj, where)
            if persona.id in seen:
                raise WorkloadError(f"{where}: duplicate persona id {persona.id}")
            seen.add(persona.id)
            personas.append(persona)
            if limit is not None and len(personas) >= limit:
                break
    if not personas:
        raise WorkloadError(f"{path}: no personas in file")
    return personas


def messages_for(persona: Persona) -> tuple[dict[str, str], ...]:
    return (
        {"role": "system", "content": persona.describe()},
        {"role": "user", "content": QUESTION},
    )


Positions: TypeAlias = "range | array[int]"  # which of a workload's calls a view holds, in order


class CallSeq(Sequence[Call]):
    """A workload's calls, each made when a strategy takes it (position -> ``Call``).

    Nothing per call is kept: a million calls cost what the persona table costs. A slice or ``subset``
    is a view on the same maker (a resumed cell's missing calls are an array of positions, 4 bytes a call).
    """

    __slots__ = ("_make", "_positions")

    def __init__(self, make: Callable[[int], Call], positions: Positions) -> None:
        self._make = make
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> Call: ...
    @overload
    def __getitem__(self, index: slice) -> CallSeq: ...
    def __getitem__(self, index: int | slice) -> Call | CallSeq:
        if isinstance(index, slice):
            return CallSeq(self._make, self._positions[index])
        return self._make(self._positions[index])

    def __iter__(self) -> Iterator[Call]:
        make = self._make
        for position in self._positions:
            yield make(position)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return NotImplemented if not isinstance(other, Sequence) else False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CallSeq({len(self)} calls)"

    def subset(self, keep: Sequence[int]) -> CallSeq:
        """The calls at these indices of this view (ascending), as a view that stores 4 bytes a call."""
        positions = self._positions
        return CallSeq(self._make, array("I", (positions[i] for i in keep)))


class CallChain(Sequence[Call]):
    """Several call sequences one after another (a plan's missing calls, cell after cell), none copied."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Sequence[Sequence[Call]]) -> None:
        self._parts = [part for part in parts if len(part)]

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts)

    @overload
    def __getitem__(self, index: int) -> Call: ...
    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...
    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        if isinstance(index, slice):
            return list(self)[index]  # small plans only: nothing in the engine slices a chain
        if index < 0:
            index += len(self)
        for part in self._parts:
            if index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError("call index out of range")

    def __iter__(self) -> Iterator[Call]:
        for part in self._parts:
            yield from part


def _messages(persona: Persona | Respondent) -> tuple[dict[str, str], ...]:
    return persona.messages if isinstance(persona, Respondent) else messages_for(persona)


def lazy_calls(
    personas: Sequence[Persona | Respondent], repeats: int = 1, ask: Ask = DEFAULT_ASK, *, count: int | None = None
) -> CallSeq:
    """Every persona asked ``repeats`` times, persona-major (``build_calls``'s order); with ``count``,
    repeat-major and cut at ``count`` (``calls_for_count``'s order), made one by one as taken."""
    if repeats < 1:
        raise WorkloadError("repeats must be at least 1")
    people = tuple(personas)
    size = len(people)
    said = [_messages(p) for p in people]  # one tuple a persona, shared by its repeats

    def make_persona_major(i: int) -> Call:
        which, repeat = divmod(i, repeats)
        pid = people[which].id
        return Call(call_id=call_id_for(pid, repeat), persona_id=pid, repeat=repeat, messages=said[which], ask=ask)

    def make_repeat_major(i: int) -> Call:
        repeat, which = divmod(i, size)
        pid = people[which].id
        return Call(call_id=call_id_for(pid, repeat), persona_id=pid, repeat=repeat, messages=said[which], ask=ask)

    if count is None:
        return CallSeq(make_persona_major, range(size * repeats))
    return CallSeq(make_repeat_major, range(count))


def build_calls(personas: Sequence[Persona | Respondent], repeats: int = 1, ask: Ask = DEFAULT_ASK) -> list[Call]:
    """Every persona asked ``repeats`` times, persona-major, with stable call ids."""
    return list(lazy_calls(personas, repeats, ask))


def lazy_calls_for_count(personas: Sequence[Persona | Respondent], n_calls: int, ask: Ask = DEFAULT_ASK) -> CallSeq:
    """``n_calls`` calls: each persona once, cycling with more repeats when N exceeds the file; repeat-major
    (table order within a repeat) so that N ≤ len(personas) asks N distinct personas. Made as taken."""
    if n_calls < 1:
        raise WorkloadError("--calls must be at least 1")
    if not personas:
        raise WorkloadError("no personas to ask")
    return lazy_calls(personas, 1, ask, count=n_calls)


def calls_for_count(personas: Sequence[Persona | Respondent], n_calls: int, ask: Ask = DEFAULT_ASK) -> list[Call]:
    """``n_calls`` calls: each persona once, cycling with more repeats when N exceeds the file."""
    return list(lazy_calls_for_count(personas, n_calls, ask))


def parse_answer(content: str | None, ask: Ask = DEFAULT_ASK) -> str | None:
    """The answer (one of ``ask.choices``; "Harris"/"Trump" by default), or None when it cannot be read."""
    answer, error = read_answer(content, ask)
    return None if error else answer


def estimate_prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    """A cheap token estimate (≈4 characters a token, plus per-message overhead)."""
    return sum(4 + len(m.get("content", "")) // 4 for m in messages) + 3
