"""Mock servers forked from the zygote are their own processes, handled as a started interpreter is."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bench.mock import MockConfig, MockServer
from bench.mock.fork import ZYGOTE_ENV


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_mock_forked_by_the_zygote_is_its_own_process_and_stops_cleanly() -> None:
    assert os.environ.get(ZYGOTE_ENV), "the test session's zygote is running"
    with MockServer(MockConfig(latency="zero")) as server:
        assert server.pid != os.getpid()
        assert parent_of(server.pid) != os.getpid()  # the zygote's child, not this process's
        assert server.stats().received == 0
        assert os.getsid(server.pid) == server.pid  # its own session, as a started interpreter's
    assert server.returncode == 0  # SIGTERM: a clean stop, its code written where the caller reads it


def test_a_killed_forked_mock_reads_as_killed() -> None:
    server = MockServer(MockConfig(latency="zero")).start()
    os.kill(server.pid, signal.SIGKILL)
    server.stop()
    assert server.returncode == -signal.SIGKILL


def test_without_a_zygote_the_mock_is_a_new_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ZYGOTE_ENV, str(tmp_path / "no-such-socket"))  # one that does not answer
    with MockServer(MockConfig(latency="zero")) as server:
        assert parent_of(server.pid) == os.getpid()
        assert server.stats().received == 0
    assert server.returncode == 0
