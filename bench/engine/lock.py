"""One process per run folder: two ``bench run --resume DIR`` at once would both send the missing calls."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

LOCK_FILE: Final = ".lock"


class FolderLocked(RuntimeError):
    """Another process holds the run folder (message: one line naming it)."""


class RunLock:
    """An exclusive ``flock`` on ``DIR/.lock``, released when the process ends, however it ends."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> RunLock:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise FolderLocked(f"{self.path.parent} is in use by {describe(holder)}; wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat()}
        handle.write(json.dumps(me) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def describe(holder: str) -> str:
    try:
        data = json.loads(holder)
        return f"pid {int(data['pid'])} on {data['host']} (since {data['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"
