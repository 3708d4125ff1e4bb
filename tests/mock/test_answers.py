from __future__ import annotations

import json
from collections import Counter

import pytest

from bench.core.calls import parse_answer
from bench.mock.answers import REASONS, AnswerBook, persona_key, repeat_from_call_id


def _key(i: int) -> str:
    return persona_key(
        [{"role": "system", "content": f"You are persona number {i}."}, {"role": "user", "content": "?"}]
    )


def test_persona_key_depends_on_contents_only() -> None:
    a = persona_key([{"role": "system", "content": "You are Ann."}, {"role": "user", "content": "Vote?"}])
    b = persona_key([{"role": "developer", "content": "You are Ann."}, {"content": "Vote?", "role": "user"}])
    c = persona_key([{"role": "system", "content": "You are Bob."}, {"role": "user", "content": "Vote?"}])
    assert a == b
    assert a != c
    assert len(a) == 64


@pytest.mark.parametrize(
    ("call_id", "repeat"),
    [
        pytest.param("p00042-r003", 3, id="harness-id"),
        pytest.param("p1-r12", 12, id="short"),
        pytest.param("anything-r0", 0, id="zero"),
        pytest.param("p00042", 0, id="no-suffix"),
        pytest.param("p00042-r003x", 0, id="trailing-junk"),
        pytest.param("", 0, id="empty"),
        pytest.param(None, 0, id="absent"),
    ],
)
def test_repeat_from_call_id(call_id: str | None, repeat: int) -> None:
    assert repeat_from_call_id(call_id) == repeat


def test_answers_are_deterministic_and_order_independent() -> None:
    calls = [(_key(i), r) for i in range(300) for r in range(3)]
    first = AnswerBook(seed=1)
    forward = {c: first.answer(*c) for c in calls}
    second = AnswerBook(seed=1)
    backward = {c: second.answer(*c) for c in reversed(calls)}
    assert forward == backward
    other = AnswerBook(seed=2)
    assert sum(other.answer(*c).vote != a.vote for c, a in forward.items()) > 50


def test_content_is_the_json_the_workload_asks_for() -> None:
    book = AnswerBook()
    for i in range(50):
        answer = book.answer(_key(i), 0)
        obj = json.loads(answer.content())
        assert set(obj) == {"vote", "reason"}
        assert obj["reason"] in REASONS[obj["vote"]]
        assert parse_answer(answer.content()) == answer.vote


def test_votes_split_about_evenly_over_5000_personas() -> None:
    book = AnswerBook(seed=0)
    votes = Counter(book.answer(_key(i), 0).vote for i in range(5000))
    assert set(votes) == {"Harris", "Trump"}
    assert 0.45 < votes["Harris"] / 5000 < 0.55


def test_most_personas_are_firm_and_some_split() -> None:
    book = AnswerBook(seed=0)
    minority_counts = []
    for i in range(500):
        key = _key(i)
        harris = sum(book.answer(key, r).vote == "Harris" for r in range(10))
        minority_counts.append(min(harris, 10 - harris))
    spread = Counter(minority_counts)
    assert spread[0] > 250  # most personas answer the same way ten times out of ten
    assert spread[1] > 10  # a 9–1 split happens
    assert sum(spread[n] for n in (3, 4, 5)) > 10  # and some personas are torn


def test_lean_is_extreme_for_most_personas() -> None:
    book = AnswerBook()
    leans = [book.lean(_key(i)) for i in range(2000)]
    firm = sum(p < 0.05 or p > 0.95 for p in leans)
    assert firm > 1000
    assert 0.45 < sum(leans) / len(leans) < 0.55


def test_malformed_content_does_not_parse_as_an_answer() -> None:
    book = AnswerBook()
    texts = {book.malformed(_key(i), 0) for i in range(200)}
    assert len(texts) > 4
    assert all(parse_answer(text) is None for text in texts)
