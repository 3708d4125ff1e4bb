"""One feature, every command: the same options said as ``bench run`` flags, a suite file, a sweep, a tune, an API call.

``invoke(command, options, out=…)`` runs one small benchmark in this process (click's runner on the
CLI, or ``bench.run``) and returns what a person would see: the exit code, stdout, stderr. Options
are named as ``bench.run`` names them (``prompt_tokens``, ``endpoints``, ``checks``…); each command
gets them in its own form: ``--prompt-tokens 64``, ``prompt_tokens = 64`` under ``[suite]``,
``prompt_tokens=64``.

``HeaderRelay`` stands between a client and a mock server and notes each request's method, path
and ``User-Agent``: which HTTP client sent the calls, as the server saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from click.testing import CliRunner

import bench
from bench.cli import cli

Command = Literal["run", "suite", "sweep", "tune", "api"]

# Small cells: 12 calls at the mock's fixed 10 ms, 4 at a time.
BASE: Final[dict[str, Any]] = {"strategy": "semaphore", "concurrency": 4, "calls": 12, "latency": "fixed:0.01"}
# A sweep of four cells at most (floor C=1, ceiling C=4, two levels between, no refinement) and a
# tune that doubles 1, 2, 4 under an SLO every cell meets.
SWEEP: Final = ("--ceiling", "4", "--levels", "2", "--refine", "0")
TUNE: Final = ("--slo", "latency_p99_s<=5", "--max-level", "4")

# Where each option goes in a suite file: the axes in the experiment, what the command itself
# takes on its command line, the rest under [suite].
_AXES: Final = frozenset({"strategy", "strategies", "concurrency", "latency", "rate"})
_SUITE_FLAGS: Final = frozenset({"checks", "junit", "dry_run", "cancel_on_interrupt"})
# Flags that repeat on the command line (one value each); the API keyword when it differs.
_REPEATED: Final = {"endpoints": "--endpoint", "checks": "--check"}
_API_NAMES: Final = {"endpoints": "endpoint"}


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a command did, as its user sees it; ``crash`` is an exception that escaped (a traceback)."""

    exit_code: int
    stdout: str
    stderr: str
    crash: str | None = None

    def describe(self) -> str:
        tail = "\n".join((self.stdout + "\n" + self.stderr).strip().splitlines()[-12:])
        return f"exit {self.exit_code}{f', crashed: {self.crash}' if self.crash else ''}\n{tail}"


def invoke(
    command: Command, options: Mapping[str, Any], *, out: Path, resume: bool = False, all_in_file: bool = False
) -> Outcome:
    """Run ``command`` with ``options`` into ``out`` (or, with ``resume``, resume the run in ``out``).

    A suite gets ``checks`` and ``junit`` as ``bench suite`` flags, or with ``all_in_file`` as keys.
    """
    if command == "api":
        return _api(options, out=out, resume=resume)
    if command == "suite":
        on_command_line = frozenset({"dry_run"}) if all_in_file else _SUITE_FLAGS
        suite_file = write_suite(options, out.parent / f"{out.name}.toml", on_command_line=on_command_line)
        where = ["--resume", str(out)] if resume else ["--out", str(out)]
        return run_cli(["suite", str(suite_file), *where, "-q", *_flags(options, only=on_command_line)])
    if resume:
        return run_cli([command, "--resume", str(out), "-q", "--no-plots"])
    if command == "run":
        return run_cli(["run", *_flags(options), "--out", str(out), "--no-plots", "-q"])
    level_free = {k: v for k, v in options.items() if k != "concurrency"}  # the search picks the levels
    if command == "sweep":
        return run_cli(["sweep", *SWEEP, *_flags(level_free), "--out", str(out), "--no-plots", "-q"])
    return run_cli(["tune", *TUNE, *_flags(level_free), "--out", str(out), "--no-plots", "-q"])


def run_cli(args: list[str]) -> Outcome:
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": None})
    crash = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = f"{type(result.exception).__name__}: {result.exception}"
    return Outcome(exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr, crash=crash)


def _api(options: Mapping[str, Any], *, out: Path, resume: bool) -> Outcome:
    keywords = {"resume": out} if resume else {_API_NAMES.get(k, k): v for k, v in options.items()} | {"out": out}
    try:
        results = bench.run(**keywords, no_plots=True)
    except (ValueError, RuntimeError) as exc:
        if not type(exc).__module__.startswith("bench"):
            raise  # not a refusal of ours: let the traceback show
        return Outcome(exit_code=2 if isinstance(exc, ValueError) else 1, stdout="", stderr=f"error: {exc}")
    return Outcome(exit_code=0, stdout=repr(results), stderr="")


def _flags(options: Mapping[str, Any], *, only: frozenset[str] | None = None) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        if only is not None and name not in only:
            continue
        if name in _REPEATED:
            for item in value:
                args += [_REPEATED[name], str(item)]
        elif value is True:
            args.append(_flag(name))
        elif value is not False and value is not None:
            args += [_flag(name), ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)]
    return args


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def write_suite(options: Mapping[str, Any], path: Path, *, on_command_line: frozenset[str] = _SUITE_FLAGS) -> Path:
    """A suite file saying ``options``: axes in one experiment, the rest (but ``on_command_line``) in ``[suite]``.

    Paths are written relative to the suite file, as a suite's author writes them.
    """
    head = {k: v for k, v in options.items() if k not in _AXES and k not in on_command_line}
    axes = {("strategies" if k == "strategy" else k): v for k, v in options.items() if k in _AXES}
    lines = ["[suite]", 'name = "compose"']
    lines += [f"{key} = {_toml(value, path.parent)}" for key, value in head.items()]
    lines += ["", "[[experiment]]", 'name = "cell"']
    lines += [
        f"{key} = {_toml(value if isinstance(value, list) else [value], path.parent)}" for key, value in axes.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any, base: Path) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(os.path.relpath(value, base))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item, base) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def drop_last_rows(run_dir: Path, count: int) -> list[dict[str, str]]:
    """Cut the last ``count`` rows from calls.csv, as a run stopped short leaves it; the rows cut."""
    path = run_dir / "calls.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns, rows = list(reader.fieldnames or ()), list(reader)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[:-count])
    return rows[-count:]


def values_of(document: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    found: list[Any] = []
    if isinstance(document, dict):
        for name, value in document.items():
            if name == key:
                found.append(value)
            found += values_of(value, key)
    elif isinstance(document, list):
        for item in document:
            found += values_of(item, key)
    return found


@dataclass(frozen=True, kw_only=True)
class SeenRequest:
    method: str
    path: str
    user_agent: str
    body: bytes = b""


class HeaderRelay:
    """A TCP relay on 127.0.0.1 in front of ``upstream`` (``http://HOST:PORT``) that notes every request.

    Requests are read whole (head and Content-Length body) and passed on unchanged; answers flow
    back byte for byte, so streaming and keep-alive work as against the server itself.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self.seen: list[SeenRequest] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> HeaderRelay:
        self._thread.start()
        assert self._ready.wait(10), "relay did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def posts(self, path_end: str = "/chat/completions") -> list[SeenRequest]:
        return [r for r in list(self.seen) if r.method == "POST" and r.path.endswith(path_end)]

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        back = asyncio.ensure_future(_pipe(up_reader, writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, *_ = lines[0].split(" ")
                fields = (line.partition(":") for line in lines[1:] if line)
                headers = {k.strip().lower(): v.strip() for k, _, v in fields}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append(
                    SeenRequest(method=method, path=path, user_agent=headers.get("user-agent", ""), body=body)
                )
                up_writer.write(head + body)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            back.cancel()
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


def one_line(stderr: str) -> list[str]:
    """The non-empty lines of what a command printed on stderr."""
    return [line for line in stderr.splitlines() if line.strip()]


def unique_keys(rows: Sequence[Mapping[str, str]]) -> set[tuple[str, str, str, str]]:
    return {(r["scenario"], r["strategy"], r["concurrency"], r["call_id"]) for r in rows}
