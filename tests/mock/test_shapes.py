"""The mock answers whatever shape the request asks for, deterministically per persona, repeat and seed."""

from __future__ import annotations

import json
from collections import Counter

from bench.mock.answers import AnswerBook
from bench.mock.shapes import VOTE, compose, shape_of

ENUM = {
    "type": "json_schema",
    "json_schema": {
        "name": "cats",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string", "enum": ["yes", "no", "unsure"]}, "age": {"type": "integer"}},
            "required": ["answer", "age"],
        },
    },
}


def test_without_a_shape_the_talks_vote_is_unchanged() -> None:
    book = AnswerBook(3)
    assert shape_of({"type": "json_object"}, None) is VOTE
    hint = json.dumps({"field": "vote", "choices": ["Harris", "Trump"]})
    assert shape_of({"type": "json_object"}, hint) is VOTE
    assert all(compose(book, f"k{i}", 0, VOTE) == book.answer(f"k{i}", 0).content() for i in range(50))


def test_a_schema_is_filled_from_its_enum_the_same_way_every_time() -> None:
    shape = shape_of(ENUM, None)
    first = [json.loads(compose(AnswerBook(0), f"k{i}", r, shape)) for i in range(300) for r in range(2)]
    again = [json.loads(compose(AnswerBook(0), f"k{i}", r, shape)) for i in range(300) for r in range(2)]
    assert first == again
    assert {a["answer"] for a in first} == {"yes", "no", "unsure"}
    assert all(isinstance(a["age"], int) for a in first)
    spread = Counter(a["answer"] for a in first)
    assert min(spread.values()) > 60  # every choice drawn a fair number of times out of 600


def test_named_choices_come_back_as_json_or_text() -> None:
    hint = json.dumps({"field": "pick", "choices": ["red", "blue"]})
    as_json = json.loads(compose(AnswerBook(0), "k", 0, shape_of({"type": "json_object"}, hint)))
    assert as_json["pick"] in {"red", "blue"}
    as_text = compose(AnswerBook(0), "k", 0, shape_of(None, hint))
    assert as_text.split(".")[0] == as_json["pick"]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": 'A "chef" or "baker" from Ohio.'}, {"role": "user", "content": text}]


def test_the_question_itself_names_the_field_and_choices_no_header_needed() -> None:
    skeleton = user('Pet? Answer only with a JSON object: {"pet": "cat", "dog" or "fish", "why": "<text>"}')
    shape = shape_of({"type": "json_object"}, None, skeleton)
    assert (shape.kind, shape.field, shape.choices) == ("json", "pet", ("cat", "dog", "fish"))
    text = shape_of(None, None, user('Tea? Say "tea" or "coffee".'))
    assert (text.kind, text.choices) == ("text", ("tea", "coffee"))
    # The talk's own question still gets the talk's vote; a persona's words in the system prompt are no question.
    from bench.core.calls import QUESTION

    assert shape_of({"type": "json_object"}, None, user(QUESTION)) is VOTE
    assert shape_of(None, None, user("Tea?")).kind == "vote"


def test_json_requests_need_the_skeleton_and_the_header_still_serves_when_the_question_is_silent() -> None:
    hint = json.dumps({"field": "pick", "choices": ["red", "blue"]})
    loose = user('Is it "red" or "blue"?')  # quoted words, but no {"field": …} for a JSON answer
    assert shape_of({"type": "json_object"}, hint, loose).field == "pick"
    assert shape_of({"type": "json_object"}, None, loose) is VOTE
