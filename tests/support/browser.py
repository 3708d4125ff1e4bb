"""A real headless Chromium driven over the DevTools protocol (aiohttp's websocket client, no extra package).

``open_pages`` loads files, waits for its load event and returns what a person would see:
the tables and images (each image's natural width: 0 means it did not load), the console's errors
and uncaught exceptions, and a screenshot of the whole page.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")

SEEN = """JSON.stringify({
  title: document.title,
  headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
  tables: [...document.querySelectorAll('table')].map(t => ({
    caption: t.caption ? t.caption.textContent : '',
    rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
    height: t.getBoundingClientRect().height})),
  images: [...document.images].map(i => ({
    alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth,
    width: i.getBoundingClientRect().width, external: !i.src.startsWith('data:')})),
  scripts: document.scripts.length,
  links: [...document.querySelectorAll('link[href]')].length,
  height: document.documentElement.scrollHeight})"""


def chromium() -> str | None:
    """The path of a Chromium on this machine, if any."""
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@dataclass(frozen=True, kw_only=True)
class Seen:
    """What the browser rendered and said while loading a page."""

    page: dict[str, Any]
    console_errors: list[str]
    screenshot: Path


class _Tab:
    """One page target: commands with ids, events gathered as they come."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                if data["method"] == "Page.loadEventFired":
                    self.loaded.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[number] = future
        await self.socket.send_json({"id": number, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and the browser's own error log entries (failed loads)."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append("Uncaught " + json.dumps(params.get("exceptionDetails", {}).get("text")))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console.error " + json.dumps([a.get("value") for a in params.get("args", [])]))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append("log " + str(params["entry"].get("text")))
        return found


@contextlib.contextmanager
def _browser(binary: str, profile: Path) -> Iterator[str]:
    """A headless Chromium on a free port; yields its browser websocket URL; always killed after."""
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while True:
            ready, _, _ = select.select([process.stderr], [], [], max(0.0, deadline - time.monotonic()))
            line = process.stderr.readline() if ready else ""
            if not line:
                raise RuntimeError(f"chromium did not start listening (exit code {process.poll()})")
            if match := LISTENING.search(line):
                yield match.group(1)
                return
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


async def _load(tab: _Tab, uri: str) -> tuple[dict[str, Any], list[str], bytes]:
    tab.events.clear()
    tab.loaded.clear()
    await tab.send("Page.navigate", url=uri)
    await asyncio.wait_for(tab.loaded.wait(), 60)
    seen = await tab.send("Runtime.evaluate", expression=SEEN, returnByValue=True)
    state = json.loads(seen["result"]["value"])
    size = (await tab.send("Page.getLayoutMetrics"))["cssContentSize"]
    shot = await tab.send(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    )
    await asyncio.sleep(0.2)  # events the load raised late (a console error from an onload handler)
    return state, tab.errors(), base64.b64decode(shot["data"])


async def _open(url: str, uris: list[str]) -> list[tuple[dict[str, Any], list[str], bytes]]:
    async with aiohttp.ClientSession() as session:
        port = url.split("/")[2]
        async with session.get(f"http://{port}/json/list") as reply:
            targets = await reply.json(content_type=None)
        page = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            tab = _Tab(socket)
            for domain in ("Page", "Runtime", "Log"):
                await tab.send(f"{domain}.enable")
            seen = [await _load(tab, uri) for uri in uris]
            tab.reader.cancel()
            return seen


def open_pages(binary: str, pages: list[tuple[Path, Path]], profile: Path) -> list[Seen]:
    """Load each (page, screenshot path) in turn in one fresh headless Chromium with its profile in ``profile``."""
    with _browser(binary, profile) as url:
        found = asyncio.run(_open(url, [page.resolve().as_uri() for page, _ in pages]))
    seen = []
    for (_, screenshot), (state, errors, png) in zip(pages, found, strict=True):
        screenshot.write_bytes(png)
        seen.append(Seen(page=state, console_errors=errors, screenshot=screenshot))
    return seen
