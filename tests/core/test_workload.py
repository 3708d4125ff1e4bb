"""bench.core.calls: loading personas, building calls, reading answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.core.calls import (
    QUESTION,
    Persona,
    WorkloadError,
    build_calls,
    call_id_for,
    calls_for_count,
    load_personas,
    messages_for,
    parse_answer,
)


def persona_obj(pid: int, **overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": pid,
        "name": f"Voter {pid}",
        "age": 30 + pid % 50,
        "gender": "female",
        "occupation": "welder",
        "city": "Toledo",
        "state": "OH",
        "education": "High school diploma",
        "media_diet": ["local TV news", "Facebook"],
        "household_income": "$50k–$75k",
    }
    obj.update(overrides)
    return obj


def line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    return path


def make_persona(pid: int, name: str = "", city: str = "Toledo") -> Persona:
    return Persona(
        id=pid,
        name=name or f"Voter {pid}",
        age=44,
        gender="male",
        occupation="plumber",
        city=city,
        state="OH",
        education="Some college",
    )


# --------------------------------------------------------------------------- load_personas


def test_load_personas_reads_every_field(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", [line(persona_obj(7, name="Ana Núñez", city="Tucson"))])
    [persona] = load_personas(path)
    assert persona.id == 7
    assert persona.name == "Ana Núñez"
    assert persona.age == 37
    assert persona.city == "Tucson"
    assert persona.state == "OH"
    assert persona.education == "High school diploma"
    assert persona.media_diet == ("local TV news", "Facebook")
    assert persona.extra == (("household_income", "$50k–$75k"),)


def test_load_personas_skips_blank_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", ["", line(persona_obj(0)), "   ", line(persona_obj(1)), ""])
    assert [p.id for p in load_personas(path)] == [0, 1]


@pytest.mark.parametrize(
    ("bad_line", "fragment"),
    [
        pytest.param('{"id": 2, "name": ', "not valid JSON", id="invalid-json"),
        pytest.param("[1, 2, 3]", "expected a JSON object, got list", id="non-object"),
        pytest.param(
            line({k: v for k, v in persona_obj(2).items() if k != "city"}),
            "missing field(s) city",
            id="missing-field",
        ),
        pytest.param(line(persona_obj(2, age="forty")), "'age' must be integers", id="non-integer-age"),
        pytest.param(line(persona_obj(0)), "duplicate persona id 0", id="duplicate-id"),
    ],
)
def test_load_personas_names_file_and_line_of_bad_entry(tmp_path: Path, bad_line: str, fragment: str) -> None:
    # Line 3 holds the bad entry; the blank line 2 still counts toward the line number.
    path = write_lines(tmp_path / "bad.jsonl", [line(persona_obj(0)), "", bad_line, line(persona_obj(3))])
    with pytest.raises(WorkloadError) as excinfo:
        load_personas(path)
    message = str(excinfo.value)
    assert f"{path}:3:" in message
    assert fragment in message
    assert "\n" not in message


def test_load_personas_missing_file_mentions_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "personas.jsonl"
    with pytest.raises(WorkloadError, match="cannot read personas file") as excinfo:
        load_personas(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize(
    "content",
    [pytest.param("", id="empty"), pytest.param("\n  \n\n", id="only-blank-lines")],
)
def test_load_personas_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WorkloadError, match="no personas in file") as excinfo:
        load_personas(path)
    assert str(path) in str(excinfo.value)


def test_load_personas_limit(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", [line(persona_obj(i)) for i in range(5)])
    assert [p.id for p in load_personas(path, limit=2)] == [0, 1]
    assert [p.id for p in load_personas(path, limit=99)] == [0, 1, 2, 3, 4]
    assert [p.id for p in load_personas(path)] == [0, 1, 2, 3, 4]


def test_load_personas_limit_stops_before_later_bad_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", [line(persona_obj(0)), line(persona_obj(1)), "{broken"])
    assert [p.id for p in load_personas(path, limit=2)] == [0, 1]
    with pytest.raises(WorkloadError, match="not valid JSON"):
        load_personas(path)


# --------------------------------------------------------------------------- build_calls


def test_call_id_format() -> None:
    assert call_id_for(0, 0) == "p00000-r000"
    assert call_id_for(4999, 12) == "p04999-r012"


@pytest.mark.parametrize(
    ("n_personas", "repeats"),
    [
        pytest.param(1, 1, id="1x1"),
        pytest.param(3, 4, id="3x4"),
        pytest.param(10, 2, id="10x2"),
    ],
)
def test_build_calls_is_personas_times_repeats(n_personas: int, repeats: int) -> None:
    personas = [make_persona(10 * i + 5) for i in range(n_personas)]
    calls = build_calls(personas, repeats)
    assert len(calls) == n_personas * repeats
    assert len({c.call_id for c in calls}) == len(calls)
    # Persona-major: all repeats of the first persona, then the next persona's.
    expected = [(p.id, r) for p in personas for r in range(repeats)]
    assert [(c.persona_id, c.repeat) for c in calls] == expected
    assert [c.call_id for c in calls] == [call_id_for(pid, r) for pid, r in expected]


def test_build_calls_ids_are_stable_and_use_persona_id() -> None:
    personas = [make_persona(42), make_persona(7)]
    first = build_calls(personas, 2)
    assert [c.call_id for c in first] == ["p00042-r000", "p00042-r001", "p00007-r000", "p00007-r001"]
    assert [c.call_id for c in build_calls(personas, 2)] == [c.call_id for c in first]


def test_build_calls_messages_belong_to_their_persona() -> None:
    personas = [make_persona(1, name="Rosa Diaz"), make_persona(2, name="Hank Hill")]
    calls = build_calls(personas, 2)
    assert all("Rosa Diaz" in c.messages[0]["content"] for c in calls[:2])
    assert all("Hank Hill" in c.messages[0]["content"] for c in calls[2:])


@pytest.mark.parametrize("repeats", [pytest.param(0, id="zero"), pytest.param(-1, id="negative")])
def test_build_calls_rejects_no_repeats(repeats: int) -> None:
    with pytest.raises(WorkloadError, match="repeats"):
        build_calls([make_persona(0)], repeats)


# --------------------------------------------------------------------------- calls_for_count


@pytest.mark.parametrize("n_calls", [pytest.param(1, id="1"), pytest.param(3, id="3"), pytest.param(5, id="5")])
def test_calls_for_count_up_to_personas_asks_distinct_personas_once(n_calls: int) -> None:
    personas = [make_persona(i) for i in range(5)]
    calls = calls_for_count(personas, n_calls)
    assert len(calls) == n_calls
    assert [c.persona_id for c in calls] == list(range(n_calls))
    assert {c.repeat for c in calls} == {0}


def test_calls_for_count_beyond_personas_cycles_repeats() -> None:
    personas = [make_persona(i) for i in range(5)]
    calls = calls_for_count(personas, 12)
    assert len(calls) == 12
    assert len({c.call_id for c in calls}) == 12
    # Repeat-major: every persona once, then every persona again, then the first two a third time.
    expected = [(pid, 0) for pid in range(5)] + [(pid, 1) for pid in range(5)] + [(0, 2), (1, 2)]
    assert [(c.persona_id, c.repeat) for c in calls] == expected


def test_calls_for_count_exact_multiple() -> None:
    personas = [make_persona(i) for i in range(4)]
    calls = calls_for_count(personas, 8)
    assert len(calls) == 8
    assert sorted(c.call_id for c in calls) == sorted(c.call_id for c in build_calls(personas, 2))


@pytest.mark.parametrize("n_calls", [pytest.param(0, id="zero"), pytest.param(-3, id="negative")])
def test_calls_for_count_rejects_non_positive(n_calls: int) -> None:
    with pytest.raises(WorkloadError, match="at least 1"):
        calls_for_count([make_persona(0)], n_calls)


# --------------------------------------------------------------------------- messages


def test_messages_system_prompt_describes_persona() -> None:
    persona = Persona(
        id=3,
        name="Sophia Martinez",
        age=40,
        gender="female",
        occupation="emergency-room nurse",
        city="San Francisco",
        state="CA",
        education="Bachelor's degree",
        media_diet=("NPR", "Instagram"),
        extra=(("top_issue", "health care costs"),),
    )
    system, user = messages_for(persona)
    assert system["role"] == "system"
    for fragment in (
        "Sophia Martinez",
        "40-year-old",
        "emergency-room nurse",
        "San Francisco, CA",
        "Bachelor's degree",
        "NPR, Instagram",
        "Top issue: health care costs",
    ):
        assert fragment in system["content"]
    assert user["role"] == "user"
    assert user["content"] == QUESTION


def test_user_prompt_asks_harris_or_trump_as_json() -> None:
    [_, user] = messages_for(make_persona(0))
    assert "Kamala Harris or Donald Trump" in user["content"]
    assert "JSON" in user["content"]
    assert '"vote"' in user["content"]


def test_system_prompt_differs_between_personas() -> None:
    a = messages_for(make_persona(0, name="Ann Lee", city="Boise"))[0]["content"]
    b = messages_for(make_persona(1, name="Bo Diaz", city="Miami"))[0]["content"]
    assert "Ann Lee" in a
    assert "Boise" in a
    assert "Bo Diaz" not in a
    assert a != b


# --------------------------------------------------------------------------- parse_answer


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param('{"vote": "Harris"}', "Harris", id="harris"),
        pytest.param('{"vote": "Trump", "reason": "Taxes."}', "Trump", id="trump-with-reason"),
        pytest.param('{"vote": "trump"}', "Trump", id="lowercase"),
        pytest.param('{"vote": "  HARRIS "}', "Harris", id="uppercase-padded"),
        pytest.param('{"vote": "Donald Trump"}', None, id="full-name-is-not-a-choice"),
        pytest.param('{"vote": "Harris", "reason": "Sí, claro."}', "Harris", id="unicode-reason"),
        pytest.param("not json at all", None, id="invalid-json"),
        pytest.param('{"vote": "Harris"', None, id="truncated-json"),
        pytest.param('["Harris"]', None, id="list-not-dict"),
        pytest.param('"Harris"', None, id="string-not-dict"),
        pytest.param('{"reason": "I like both."}', None, id="missing-vote"),
        pytest.param('{"vote": null}', None, id="null-vote"),
        pytest.param('{"vote": 1}', None, id="non-string-vote"),
        pytest.param('{"vote": "   "}', None, id="blank-vote"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty-string"),
    ],
)
def test_parse_answer(content: str | None, expected: str | None) -> None:
    assert parse_answer(content) == expected


def test_other_votes_are_errors_never_tallied() -> None:
    assert parse_answer('{"vote": "Jill Stein"}') is None
    assert parse_answer(json.dumps({"vote": "x" * 100})) is None
