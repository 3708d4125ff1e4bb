"""``bench overhead --ray W,…`` refuses bad worker lists with one line (exit 2), before starting Ray."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import cli


@pytest.mark.parametrize("spec", [pytest.param("x", id="not-a-number"), pytest.param("0,2", id="zero-workers")])
def test_a_bad_worker_list_is_one_line_and_exit_2(spec: str) -> None:
    result = CliRunner().invoke(cli, ["overhead", "--ray", spec])
    assert result.exit_code == 2
    assert "--ray" in result.output
    assert "Traceback" not in result.output
