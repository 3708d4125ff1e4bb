"""Answers read strictly: JSON first, then past <think>, a fenced block or the first object; choices case-folded."""

from __future__ import annotations

import pytest

from bench.core.ask import Ask, read_answer

THREE = Ask(answer_field="answer", choices=("yes", "no", "unsure"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param('{"answer": "yes"}', ("yes", ""), id="strict-json"),
        pytest.param('{"answer": "  YES "}', ("yes", ""), id="trimmed-and-case-folded"),
        pytest.param('<think>maybe no?</think>{"answer": "no"}', ("no", ""), id="after-think"),
        pytest.param('<think>x</think>\n```json\n{"answer": "unsure"}\n```', ("unsure", ""), id="fenced-block"),
        pytest.param('Sure! Here it is: {"answer": "no", "why": "{"} thanks', ("no", ""), id="first-object"),
        pytest.param('{"answer": "maybe"}', ("", 'invalid_choice: "maybe"'), id="not-a-choice"),
        pytest.param('{"answer": 3}', ("", 'invalid_choice: "3"'), id="not-text"),
        pytest.param('{"other": "yes"}', ("", "malformed_answer"), id="field-missing"),
        pytest.param("yes", ("", "malformed_answer"), id="no-json"),
        pytest.param('{"answer": "yes"', ("", "malformed_answer"), id="truncated"),
        pytest.param("", ("", "malformed_answer"), id="empty"),
        pytest.param(None, ("", "malformed_answer"), id="none"),
    ],
)
def test_json_answers(content: str | None, expected: tuple[str, str]) -> None:
    assert read_answer(content, THREE) == expected


def test_a_long_wrong_answer_is_shown_short_on_one_line() -> None:
    _, error = read_answer('{"answer": "' + "no way\\n" * 40 + '"}', THREE)
    assert error.startswith('invalid_choice: "no way no way')
    assert "\n" not in error
    assert len(error) < 70


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("Unsure, honestly. Not a yes.", ("unsure", ""), id="first-named-wins"),
        pytest.param("<think>yes or no</think> No.", ("no", ""), id="think-dropped"),
        pytest.param(
            "Yesterday I said nothing.", ("", 'invalid_choice: "Yesterday I said nothing."'), id="whole-words"
        ),
    ],
)
def test_text_answers_take_the_first_choice_named(content: str, expected: tuple[str, str]) -> None:
    assert read_answer(content, Ask(response_format=None, choices=("yes", "no", "unsure"), mode="text")) == expected


def test_no_parsing_keeps_no_answer_and_no_error() -> None:
    assert read_answer("anything", Ask(response_format=None, mode="none")) == ("", "")


def test_without_choices_the_field_is_kept_as_text() -> None:
    assert read_answer('{"score": 7}', Ask(answer_field="score", choices=())) == ("7", "")
