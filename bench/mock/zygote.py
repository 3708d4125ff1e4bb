"""A mock server's process forked from one that has already imported it: a start in milliseconds, not 0.3 s.

A test session starts many mock servers, and each new interpreter spends ~0.3 s of CPU importing aiohttp
and the mock before it listens. ``python -m bench.mock.zygote SOCKET`` imports them once and, asked over a
Unix socket, forks a child that runs the same command line ``python -m bench.mock`` would: its own
process (own GIL, own event loop, its own session), with the caller's stdin, stdout and stderr passed as
file descriptors, so ``--watch-stdin`` still ends it when the caller dies. ``MockServer`` uses it when
``ZYGOTE_ENV`` (``bench.mock.fork``) names the socket: the project's own tests set it for what runs in their
process, and leave it out of the ``bench`` processes they start, which start a new interpreter as users'
do. The child writes its exit code to the file the caller named (it is not the caller's child, so the
caller cannot wait for it). The zygote exits when its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any

from bench.mock.fork import MAX_MESSAGE


def _child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the mock ``python -m bench.mock ARGV`` would be, then exit with its code."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        for name, value in request["env"].items():  # "" unsets: the child sees the caller's value or none
            if value:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        sys.stdin = os.fdopen(0, "r", closefd=False)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        from bench.mock.command import mock_server_command

        try:
            mock_server_command.main(args=request["argv"], prog_name="python -m bench.mock")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError), open(request["exit_file"], "w") as handle:
            handle.write(str(code))
        os._exit(code)


def serve(path: str) -> None:
    """Fork a mock for each request on ``path`` until stdin closes."""
    # What each child would import (aiohttp with the server): imported once, here.
    import bench.mock.command  # noqa: F401
    import bench.mock.server  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they exit
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(64)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while True:
            ready, _, _ = select.select([listener, sys.stdin], [], [])
            if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1024):
                return  # the test session is gone
            if listener not in ready:
                continue
            conn, _ = listener.accept()
            with conn:
                message, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
                request = json.loads(message)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    conn.close()
                    _child(request, fds)
                for fd in fds:
                    os.close(fd)
                conn.sendall(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    serve(sys.argv[1])
