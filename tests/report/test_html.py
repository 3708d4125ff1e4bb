"""``bench report --html``: one self-contained page, checked in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from bench.mock import MockServer
from bench.report.fit import Column, FittedTable
from bench.report.html import Page, render
from tests.support.browser import chromium, open_pages
from tests.support.cli_runs import invoke_bench

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_the_page_inlines_its_images_and_escapes_what_it_shows(tmp_path: Path) -> None:
    plot = tmp_path / "a.png"
    plot.write_bytes(PNG_1PX)
    table = FittedTable(title="<b>t</b>", columns=[Column(header="answer", left=True)], rows=[["<script>x</script>"]])
    checks = [
        {
            "check": "http_429 == 0",
            "scenario": "main",
            "strategy": "s",
            "concurrency": 2,
            "op": "==",
            "bound": 0.0,
            "value": 3.0,
            "passed": False,
        }
    ]
    page = render(Page(title="r", tables=[table], checks=checks, plots=[plot], run={"config": {"model": "m<"}}))
    assert "<script" not in page  # the answer is data: escaped, never run
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing fetched: it opens without a server
    (data,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(data) == PNG_1PX
    assert "checks: 0 passed, 1 failed" in page
    assert "FAIL" in page
    assert "m&lt;" in page


BROKEN = """<!DOCTYPE html><html><head><title>broken</title></head><body><table><tr><td>x</td></tr></table>
<img alt="gone" src="data:image/png;base64,AAAA">
<script>console.error("boom"); undefined_call();</script></body></html>"""


@pytest.mark.slow  # a real run on the mock, its plots, and a browser
@pytest.mark.skipif(chromium() is None, reason="no Chromium: apt-get install -y chromium (.ci/run installs it)")
def test_the_html_report_renders_every_table_and_plot_in_headless_chromium(
    tmp_path: Path, mock_server: MockServer
) -> None:
    """The screenshot stays at ``tmp_path / "report.png"`` (pytest's tmp folder for this test) to look at."""
    people = tmp_path / "people.csv"
    people.write_text("id,state\n" + "".join(f"{i},{('CA', 'TX', 'NY')[i % 3]}\n" for i in range(12)))
    run_dir = tmp_path / "run"
    ran = invoke_bench(
        [
            "run",
            "--endpoint",
            mock_server.base_url,
            "--personas-file",
            str(people),
            "--calls",
            "12",
            "--strategy",
            "semaphore,gather",
            "--concurrency",
            "4",
            "--check",
            "http_429 == 0",
            "-q",
            "--out",
            str(run_dir),
        ]
    )
    assert ran.returncode == 0, ran.stderr
    report = invoke_bench(["report", str(run_dir), "--html", "--by", "state"])
    assert report.returncode == 0, report.stderr
    html = run_dir / "report.html"
    assert f"report: {html}" in report.stdout
    pngs = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    assert "tally_by_state.png" in pngs
    assert len(pngs) >= 6

    broken = tmp_path / "broken.html"
    broken.write_text(BROKEN)
    seen, control = open_pages(
        chromium() or "", [(html, tmp_path / "report.png"), (broken, tmp_path / "broken.png")], tmp_path / "profile"
    )
    # The checker itself can fail: a page with a broken image and a throwing script is caught.
    assert [i["naturalWidth"] for i in control.page["images"]] == [0]
    assert any("boom" in e for e in control.console_errors)
    assert any(e.startswith("Uncaught") for e in control.console_errors)

    page = seen.page
    assert seen.console_errors == []
    assert page["title"] == "bench report: run"
    assert page["headings"] == ["Cells", "Answers and findings", "Checks", "Plots", "Configuration"]
    assert page["scripts"] == 0
    assert page["links"] == 0
    captions = [t["caption"] for t in page["tables"]]
    for expected in (
        "scenario main: 12 calls a cell",
        "answers per cell",
        "answers by state · main",
        "checks: 2 passed, 0 failed",
        "configuration",
        "options set",
        "versions",
        "host",
    ):
        assert any(c.startswith(expected) for c in captions), (expected, captions)
    assert all(t["rows"] > 0 and t["height"] > 0 for t in page["tables"])
    assert sorted(i["alt"] for i in page["images"]) == pngs  # every plot, once
    for image in page["images"]:
        assert image["complete"], image
        assert image["naturalWidth"] > 0, image  # 0: the browser could not decode it
        assert image["width"] > 0, image
        assert not image["external"]
    with Image.open(seen.screenshot) as shot:
        assert shot.size[1] >= page["height"] * 0.9  # the whole page, not just the first screen
    config = json.loads((run_dir / "run.json").read_text())["config"]
    assert config["personas_file"] in html.read_text()
    assert "95 % (Wilson) interval" in html.read_text()  # the crosstab's legend travels with it
