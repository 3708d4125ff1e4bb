"""Workload files: templates from any columns, choices as a strict enum, one-line refusals, the shipped default."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.core.calls import DEFAULT_PERSONAS_FILE, WorkloadError, load_personas, messages_for
from bench.core.personas import load_table
from bench.survey.spec import DEFAULT_WORKLOAD_FILE, Overrides, load_workload, resolve

CATS = """
name = "cats"
system = "You are {first_name}, living in a {home}."
question = "Would you adopt a cat, {first_name}?"
choices = ["yes", "no", "unsure"]
temperature = 0.7
seed = 7
extra_body = { top_p = 0.9 }
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_templates_fill_from_the_row_and_choices_become_a_strict_enum(tmp_path: Path) -> None:
    workload = load_workload(write(tmp_path, "cats.toml", CATS))
    table = load_table(write(tmp_path, "pets.csv", "first_name,home\nAna,flat\n"))
    (person,) = workload.respondents(table)
    assert person.messages == (
        {"role": "system", "content": "You are Ana, living in a flat."},
        {"role": "user", "content": "Would you adopt a cat, Ana?"},
    )
    ask = workload.ask()
    assert ask.body() == {
        "max_tokens": 120,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "cats",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"answer": {"type": "string", "enum": ["yes", "no", "unsure"]}},
                    "required": ["answer"],
                    "additionalProperties": False,
                },
            },
        },
        "temperature": 0.7,
        "seed": 7,
        "top_p": 0.9,
    }
    assert (ask.answer_field, ask.choices, ask.mode) == ("answer", ("yes", "no", "unsure"), "json")


def test_the_shipped_election_workload_asks_exactly_what_the_talk_asked() -> None:
    assert DEFAULT_WORKLOAD_FILE.is_file()
    workload = load_workload()
    people = workload.respondents(load_table(DEFAULT_PERSONAS_FILE, limit=50))
    legacy = load_personas(limit=50)
    assert [p.messages for p in people] == [messages_for(p) for p in legacy]
    ask = workload.ask()
    assert ask.body() == {"max_tokens": 120, "response_format": {"type": "json_object"}}
    assert (ask.answer_field, ask.choices) == ("vote", ("Harris", "Trump"))


def test_a_schema_of_your_own_is_sent_as_given_and_its_enum_checked(tmp_path: Path) -> None:
    text = 'question = "Q?"\nanswer_field = "mood"\nschema = \'{"type": "object", "properties": {"mood": {"enum": ["up", "down"]}}, "required": ["mood"]}\'\n'  # noqa: E501
    ask = load_workload(write(tmp_path, "s.toml", text)).ask()
    assert ask.response_format is not None
    assert ask.response_format["json_schema"]["schema"]["properties"]["mood"] == {"enum": ["up", "down"]}
    assert ask.choices == ("up", "down")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param('question = "Q?"\nchoices = []\n', "choices: the list is empty", id="empty-choices"),
        pytest.param('question = "Q?"\nschema = \'{"type": 5}\'\n', "schema is not valid JSON Schema", id="bad-schema"),
        pytest.param('question = "Q?"\nschema = "{nope"\n', "schema: not valid JSON", id="schema-not-json"),
        pytest.param('question = "Q?"\nchoice = ["a"]\n', "unknown key 'choice'", id="typo"),
        pytest.param('question = "Q?"\nresponse_format = "text"\n', "text needs choices", id="text-no-choices"),
        pytest.param('question = "Q {}?"\n', "name a column", id="positional-placeholder"),
        pytest.param('question = "Q {?"\n', "not a valid template", id="unbalanced-brace"),
        pytest.param("choices = ['a']\n", "question: missing", id="no-question"),
        pytest.param('question = "Q?"\ntemperature = 9\n', "temperature: expected a number from 0 to 2", id="temp"),
        pytest.param("question = [", "not valid TOML", id="not-toml"),
    ],
)
def test_bad_workload_files_are_one_line_naming_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, "w.toml", text)
    with pytest.raises(WorkloadError) as caught:
        load_workload(path)
    message = str(caught.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_a_template_column_the_table_lacks_is_named_with_template_and_file(tmp_path: Path) -> None:
    workload = load_workload(write(tmp_path, "cats.toml", CATS))
    table_path = write(tmp_path, "pets.csv", "first_name\nAna\n")
    with pytest.raises(WorkloadError) as caught:
        workload.respondents(load_table(table_path))
    assert str(caught.value).startswith(f"the system template names column 'home', which {table_path} lacks")


def test_flags_lay_over_the_file_and_a_question_alone_starts_blank(tmp_path: Path) -> None:
    path = write(tmp_path, "cats.toml", CATS)
    changed = resolve(path, Overrides(question="A or b?", choices=("a", "b"), max_tokens=5, response_format="text"))
    assert (changed.choices, changed.max_tokens, changed.format, changed.system) == (
        ("a", "b"),
        5,
        "text",
        "You are {first_name}, living in a {home}.",
    )
    enum = resolve(path, Overrides(choices=("a", "b")))  # json_schema: the enum tells the model the new answers
    assert (enum.choices, enum.format, enum.question) == (
        ("a", "b"),
        "json_schema",
        "Would you adopt a cat, {first_name}?",
    )
    blank = resolve(None, Overrides(question="Tea, {name}?", choices=("yes", "no")))
    assert (blank.system, blank.answer_field, blank.format) == ("{persona}", "answer", "json_schema")
    assert resolve(None, Overrides()).name == "election"


def test_any_row_can_be_described_as_a_persona(tmp_path: Path) -> None:
    workload = resolve(None, Overrides(question="Q?", choices=("a",)))
    (person,) = workload.respondents(load_table(write(tmp_path, "p.csv", "id,first_name,pet\n9,Ana,cat\n")))
    assert person.id == 9
    assert person.messages[0]["content"] == "You are a survey respondent. first name: Ana; pet: cat"


@pytest.mark.parametrize(
    "placeholder",
    [
        pytest.param("{first_name.__class__}", id="attribute"),
        pytest.param("{first_name:>999999999}", id="format-spec"),
        pytest.param("{first_name[0]}", id="index"),
        pytest.param("{first_name!r}", id="conversion"),
        pytest.param("{first_name:{home}}", id="nested-spec"),
    ],
)
def test_only_plain_column_placeholders_are_allowed_and_the_template_is_named(tmp_path: Path, placeholder: str) -> None:
    path = write(tmp_path, "w.toml", f'question = "Hi {placeholder}?"\nchoices = ["a", "b"]\n')
    with pytest.raises(WorkloadError) as caught:  # refused on loading, before any row is filled
        load_workload(path)
    message = str(caught.value)
    assert "w.toml: the question template has" in message
    assert "only plain {column} placeholders" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("path_text", "overrides", "fragment"),
    [
        pytest.param(
            None,
            Overrides(question="Which pet?"),
            "--question: response_format json_object needs the word JSON",
            id="question-alone",
        ),
        pytest.param('question = "Which pet?"\n', Overrides(), "needs the word JSON", id="file-json-object"),
        pytest.param(
            None, Overrides(choices=("a", "b")), "--choices without --question", id="choices-over-the-election"
        ),
        pytest.param(
            CATS,
            Overrides(choices=("a", "b"), response_format="text"),
            "asks for yes, no, unsure in text",
            id="choices-text",
        ),
    ],
)
def test_a_workload_no_model_could_answer_is_refused_before_any_call(
    tmp_path: Path, path_text: str | None, overrides: Overrides, fragment: str
) -> None:
    """JSON mode the messages never ask for (OpenAI answers such a request with a 400), or choices the question
    does not ask for in a format (json_object, text) where only the question tells the model its answers."""
    path = None if path_text is None else write(tmp_path, "w.toml", path_text)
    with pytest.raises(WorkloadError) as caught:
        resolve(path, overrides)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_json_mode_the_question_asks_for_and_the_elections_own_choices_pass() -> None:
    asked = resolve(None, Overrides(question='Which pet? Answer as JSON: {{"answer": "cat" or "dog"}}'))
    assert (asked.format, asked.source) == ("json_object", "--question")
    assert resolve(None, Overrides(choices=("Harris", "Trump", "Stein"), response_format="json_schema")).choices == (
        "Harris",
        "Trump",
        "Stein",
    )
