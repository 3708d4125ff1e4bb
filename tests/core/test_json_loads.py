"""``bench.core.ask.loads``: ``json.loads``'s value or its error, whatever the text (only quicker for the usual one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.core.ask import Ask, loads, match_choice, read_answer

ANSWER = '{"id":"c1","choices":[{"message":{"content":"{\\"vote\\": \\"Trump\\"}"}}],"usage":{"prompt_tokens":3}}'


def _outcome(parse: Any, data: str | bytes) -> tuple[str, Any]:
    try:
        return "value", parse(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(ANSWER, id="an-answer"),
        pytest.param(ANSWER.encode(), id="its-bytes"),
        pytest.param(ANSWER + "\n", id="a-newline-after"),
        pytest.param(ANSWER + " x", id="more-after"),
        pytest.param("  " + ANSWER, id="white-space-before"),
        pytest.param(ANSWER.encode("utf-16"), id="utf-16-with-bom"),
        pytest.param(ANSWER.encode("utf-16-le"), id="utf-16-le"),
        pytest.param(ANSWER.encode("utf-32-le"), id="utf-32-le"),
        pytest.param(b"\xef\xbb\xbf" + ANSWER.encode(), id="utf-8-bom"),
        pytest.param('{"a": "é ☃ 😀"}'.encode(), id="non-ascii"),
        pytest.param(b'{"a": "\xed\xa0\x80"}', id="an-encoded-surrogate"),
        pytest.param(b'{"a": "\xff"}', id="not-utf-8"),
        pytest.param('{"a": 1', id="cut-short"),
        pytest.param("{", id="a-brace"),
        pytest.param(b"{", id="a-brace-byte"),
        pytest.param("[1, 2]", id="a-list"),
        pytest.param("", id="empty"),
        pytest.param(b"", id="no-bytes"),
        pytest.param('{"a": NaN}', id="nan"),
        pytest.param('{"a": 1}{"b": 2}', id="two-objects"),
    ],
)
def test_loads_gives_what_json_loads_gives(data: str | bytes) -> None:
    assert _outcome(loads, data) == _outcome(json.loads, data)


def test_a_choice_is_matched_as_before_from_a_tuple_or_a_list() -> None:
    assert match_choice(" trump ", ("Harris", "Trump")) == "Trump"
    assert match_choice("TRUMP", ["Harris", "Trump"]) == "Trump"  # type: ignore[arg-type]  # a list, as users pass
    assert match_choice("maybe", ("Harris", "Trump")) is None
    assert match_choice("yes", ("Yes ", "yes")) == "Yes "  # two choices with one name: the first, as before
    assert read_answer('{"vote": "harris"}', Ask(answer_field="vote")) == ("Harris", "")
