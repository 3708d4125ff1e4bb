"""Start the mock server as its own process (own GIL, own event loop) and talk to it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from bench.mock.config import API_KEY_ENV, MockConfig
from bench.mock.fork import ZYGOTE_ENV, request_fork
from bench.mock.stats import ServerStats

READY_PREFIX: Final = "listening on "
STOP_GRACE_S: Final = 5.0
_PROJECT_ROOT: Final = str(Path(__file__).resolve().parent.parent.parent)
# Talk to 127.0.0.1 directly, whatever *_proxy variables say.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MockStartError(RuntimeError):
    """A mock server could not start; the message says why in one line."""


def start_mock(stack: contextlib.ExitStack, config: MockConfig, *, where: str = "") -> MockServer:
    """Start a mock server that ``stack`` stops; MockStartError (one line, naming ``where``) if it cannot."""
    try:
        return stack.enter_context(MockServer(config))
    except (RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        label = f" for {where}" if where else ""
        raise MockStartError(f"cannot start the mock server{label}: {first}") from None


class MockServer:
    """``with MockServer(MockConfig(latency="zero")) as server: ... server.base_url ...``"""

    def __init__(self, config: MockConfig | None = None, *, startup_timeout: float = 15.0) -> None:
        self.config = config or MockConfig()
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | _Forked | None = None
        self._dir: Path | None = None
        self._url: str | None = None
        self._stderr_final = ""
        self.returncode: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> MockServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> MockServer:
        """Launch the process and return once ``/health`` answers 200 (RuntimeError otherwise)."""
        if self._proc is not None:
            raise RuntimeError("mock server already started")
        self._dir = Path(tempfile.mkdtemp(prefix="bench-mock-"))
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        if self.config.api_key is not None:
            env[API_KEY_ENV] = self.config.api_key
        args = [*self.config.to_args(), "--watch-stdin"]
        with (self._dir / "stdout").open("wb") as out, (self._dir / "stderr").open("wb") as err:
            # stdin stays open: the server exits when it reads EOF, i.e. when this process dies.
            # Its own session: Ctrl-C in a terminal signals the whole foreground group, and the mock
            # must outlive the harness's own shutdown (calls in flight, /stats); ``stop`` ends it.
            zygote = os.environ.get(ZYGOTE_ENV)
            forked = _fork(zygote, args, env, self._dir, out.fileno(), err.fileno()) if zygote else None
            self._proc = forked or subprocess.Popen(
                [sys.executable, "-m", "bench.mock", *args],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + self.startup_timeout
            self._url = self._wait_for_url(deadline)
            self._wait_for_health(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _fail(self, why: str) -> RuntimeError:
        tail = self.stderr()[-2000:].strip()
        return RuntimeError(f"mock server {why}" + (f"; its stderr ends:\n{tail}" if tail else ""))

    def _wait_for_url(self, deadline: float) -> str:
        assert self._proc is not None
        assert self._dir is not None
        stdout = self._dir / "stdout"
        while True:
            for line in stdout.read_text(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX) :].strip()
            if self._proc.poll() is not None:
                raise self._fail(f"exited with code {self._proc.returncode} before listening")
            if time.monotonic() > deadline:
                raise self._fail(f"did not report its address within {self.startup_timeout:g} s")
            time.sleep(0.01)

    def _wait_for_health(self, deadline: float) -> None:
        assert self._proc is not None
        while True:
            try:
                if self._get("/health", timeout=1.0).get("status") == "ok":
                    return
            except (OSError, ValueError):
                pass
            if self._proc.poll() is not None:
                raise self._fail(f"exited with code {self._proc.returncode} during start-up")
            if time.monotonic() > deadline:
                raise self._fail(f"/health did not answer 200 within {self.startup_timeout:g} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
            self.returncode = proc.returncode
        if self._dir is not None:
            self._stderr_final = self._read("stderr")
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- facts -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("mock server is not running")
        return self._proc.pid

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        if self._url is None:
            raise RuntimeError("mock server has not started")
        return self._url

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def _read(self, name: str) -> str:
        if self._dir is None:
            return ""
        try:
            return (self._dir / name).read_text(errors="replace")
        except OSError:
            return ""

    def stderr(self) -> str:
        """What the server wrote to stderr so far (kept after ``stop``)."""
        return self._read("stderr") if self._dir is not None else self._stderr_final

    # -- HTTP --------------------------------------------------------------------------------
    def _get(self, path: str, *, method: str = "GET", timeout: float = 10.0) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with _OPENER.open(request, timeout=timeout) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def stats(self, detail: bool = False) -> ServerStats:
        """``GET /stats`` (with ``admitted_s`` and key counts when ``detail``), parsed."""
        return ServerStats.from_json(self._get("/stats?detail=1" if detail else "/stats"))

    def reset_stats(self) -> None:
        """``POST /stats/reset``: zero the counters, refill the rate limits and the quota."""
        self._get("/stats/reset", method="POST")

    def __repr__(self) -> str:
        state = self._url if self.running else "stopped"
        return f"MockServer({state}, latency={self.config.latency!r})"


class _Forked:
    """A mock forked by the zygote (``bench.mock.zygote``), handled as ``subprocess.Popen`` handles its own.

    Not this process's child: it is alive while its pid is (the zygote reaps it at once), and its exit code
    is what it wrote to ``exit_file`` (-9 when it wrote none: killed)."""

    def __init__(self, pid: int, stdin: Any, exit_file: Path) -> None:
        self.pid = pid
        self.stdin = stdin
        self._exit_file = exit_file
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                try:
                    self.returncode = int(self._exit_file.read_text() or "-9")
                except (OSError, ValueError):
                    self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("bench.mock", timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _fork(zygote: str, args: list[str], env: dict[str, str], folder: Path, out: int, err: int) -> _Forked | None:
    """A mock forked by the zygote at ``zygote``; None (start a new interpreter instead) if it does not answer."""
    read_end, write_end = os.pipe()
    exit_file = folder / "exit"
    wanted = {API_KEY_ENV: env.get(API_KEY_ENV, "")}
    try:
        pid = request_fork(zygote, argv=args, env=wanted, exit_file=str(exit_file), fds=[read_end, out, err])
    except (OSError, ValueError, KeyError):
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return _Forked(pid, os.fdopen(write_end, "wb"), exit_file)
