"""Ask the mock zygote (``bench.mock.zygote``) for a mock server's process: what ``MockServer`` needs of it.

Apart from the zygote itself, which imports the whole mock: this module imports none of it.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Final

ZYGOTE_ENV: Final = "BENCH_MOCK_ZYGOTE"  # the socket of the zygote to ask; unset: start a new interpreter
MAX_MESSAGE: Final = 1 << 16


def request_fork(path: str, *, argv: list[str], env: dict[str, str], exit_file: str, fds: list[int]) -> int:
    """Ask the zygote at ``path`` for a mock running ``argv`` on ``fds`` (stdin, stdout, stderr); its pid."""
    message = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd(), "exit_file": exit_file}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10.0)
        conn.connect(path)
        socket.send_fds(conn, [message], fds)
        reply = conn.recv(MAX_MESSAGE)
    return int(json.loads(reply)["pid"])
