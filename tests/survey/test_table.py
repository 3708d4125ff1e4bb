"""Any persona table: JSONL, CSV (Parquet with pyarrow), any columns, ids from a column or the row number."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.core.calls import DEFAULT_PERSONAS_FILE, WorkloadError
from bench.core.personas import load_table


def test_a_csv_with_its_own_columns_and_id_column(tmp_path: Path) -> None:
    path = tmp_path / "pets.csv"
    path.write_text("respondent,first_name,pets\nr1,Ana,0\nr2,Ben,2\n")
    table = load_table(path, id_column="respondent")
    assert table.columns == ("respondent", "first_name", "pets")
    assert table.ids == ("r1", "r2")
    assert table.rows[1]["first_name"] == "Ben"


def test_without_an_id_column_ids_are_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("name\nA\nB\nC\n")
    assert load_table(path).ids == (0, 1, 2)


def test_the_shipped_personas_keep_their_integer_ids() -> None:
    table = load_table(DEFAULT_PERSONAS_FILE, limit=3)
    assert table.ids == (0, 1, 2)
    assert "media_diet" in table.columns


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        pytest.param("dup.csv", "id,x\n1,a\n1,b\n", "row 2: duplicate persona id 1", id="duplicate-id"),
        pytest.param("ragged.csv", "a,b\n1,2\n3,4,5,6\n", "Expected 2 fields in line 3", id="unreadable-csv"),
        pytest.param("bad.jsonl", '{"a": 1}\n[1]\n', "bad.jsonl:2: expected a JSON object", id="jsonl-not-object"),
        pytest.param("people.xlsx", "x", "unknown table type '.xlsx'", id="unknown-type"),
        pytest.param("empty.csv", "id,name\n", "no personas in file", id="empty"),
    ],
)
def test_bad_tables_are_one_line(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(WorkloadError) as caught:
        load_table(path)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_an_unknown_id_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("name\nA\n")
    with pytest.raises(WorkloadError, match="no column 'who' for --id-column"):
        load_table(path, id_column="who")


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for engine in ("pyarrow", "fastparquet"):  # as on a machine that has neither, installed here or not
        monkeypatch.setitem(sys.modules, engine, None)
    path = tmp_path / "p.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(WorkloadError, match=r"Parquet needs pyarrow \(pip install pyarrow\)"):
        load_table(path)
