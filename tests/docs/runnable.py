"""Find the code blocks of README.md and docs/**/*.md that are marked runnable.

A block is runnable when the line just before its opening fence is the marker, an HTML comment
that neither GitHub nor MkDocs shows::

    <!-- runnable -->
    ```bash
    bench run --calls 20 --latency zero
    ```

The marker may carry expectations: ``<!-- runnable: exit=1 rows=40 -->`` (the exit status, default 0;
the number of rows in every calls.csv the block wrote, added up). ``bash`` blocks run under
``bash -eo pipefail``, ``python`` blocks as a script, each in a fresh folder that holds a copy of
``examples/`` (docs/contributing.md says how to write one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
MARKER: Final = re.compile(r"^<!--\s*runnable(?::(?P<args>[^>]*))?\s*-->\s*$")
FENCE: Final = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
LANGUAGES: Final = ("bash", "python")


@dataclass(frozen=True, kw_only=True)
class Block:
    """One runnable block: where it is, its language and text, and what it should do."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    expect: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def exit(self) -> int:
        return int(self.expect.get("exit", "0"))

    @property
    def rows(self) -> int | None:
        return int(self.expect["rows"]) if "rows" in self.expect else None


def pages() -> list[Path]:
    """The README and every page of the docs site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_in(path: Path) -> list[Block]:
    """The runnable blocks of one Markdown file (a marker not followed by a fence is an error)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    fence = ""  # the fence of the code block we are in, if any (a marker shown inside one is an example)
    for index, text in enumerate(lines):
        opening = FENCE.match(text.strip())
        if fence:
            if text.strip().startswith(fence) and text.strip().rstrip("`~") == "":
                fence = ""
            continue
        if opening is not None:
            fence = opening["fence"]
            continue
        marker = MARKER.match(text.strip())
        if marker is None:
            continue
        opening = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        if opening is None:
            raise ValueError(f"{path}:{index + 1}: a runnable marker must be followed by a code fence")
        lang = opening["lang"]
        if lang not in LANGUAGES:
            raise ValueError(f"{path}:{index + 2}: runnable blocks are {' or '.join(LANGUAGES)}, not {lang!r}")
        end = next((j for j in range(index + 2, len(lines)) if lines[j].strip() == opening["fence"]), None)
        if end is None:
            raise ValueError(f"{path}:{index + 2}: the code fence is never closed")
        expect = dict(pair.split("=", 1) for pair in (marker["args"] or "").split())
        code = "\n".join(lines[index + 2 : end]) + "\n"
        found.append(Block(path=path, line=index + 2, lang=lang, code=code, expect=expect))
    return found


def runnable_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks_in(page)]
