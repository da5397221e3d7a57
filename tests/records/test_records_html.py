"""The HTML report in a real headless browser (Debian's chromium, driven by playwright).

The page must render with no console error, make no request of any kind, show
the steps, and never run a script hidden in a recorded output. A missing
chromium fails these tests (it is installed by .ci/run): it is never a skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from records_support import mux, mux_json, write

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

HOSTILE = (
    "</script><script>window.pwned = 1; console.error('pwned')</script><img src=x onerror=alert(1)>"
)

WORKFLOW = """\
name = "report-demo"

[[steps]]
name = "list"
type = "shell"
run = "printf 'a\\\\nb\\\\nc\\\\n'"

[[steps]]
name = "each"
type = "shell"
for_each = "steps.list.output | lines"
run = "echo {{ item }}-done"

[[steps]]
name = "hostile"
type = "shell"
run = "cat hostile.txt"
depends_on = ["list"]

[[steps]]
name = "final"
type = "shell"
run = "echo all; echo oops >&2; exit 1"
depends_on = ["each", "hostile"]
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: .ci/run installs the chromium package"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _report(project: Path) -> tuple[Path, str]:
    write(project, WORKFLOW)
    (project / "hostile.txt").write_text(HOSTILE + "\n")
    assert mux(project, "run", "wf.toml").returncode == 1
    run_id = mux_json(project, "runs")[0]["id"]
    page = project / "report.html"
    done = mux(project, "show", run_id, "--html", str(page))
    assert done.returncode == 0, done.stderr
    return page, run_id


def test_report_renders_offline_with_every_step(browser: Any, project: Path) -> None:
    page_path, run_id = _report(project)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))

    def refuse(route: Any) -> None:
        if route.request.url != page_path.as_uri():
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", refuse)
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    assert errors == []
    assert requests == []
    assert page.evaluate("window.pwned") is None
    text = page.inner_text("body")
    for name in ("list", "each", "hostile", "final"):
        assert name in text
    assert run_id in text
    # the hostile output is shown as text, whole
    assert "</script><script>window.pwned = 1;" in (page.text_content("#step-hostile") or "")
    # the failed step is open, with its stderr; the graph has a node per step
    assert page.is_visible("#step-final pre.err")
    assert "oops" in page.inner_text("#step-final")
    assert page.locator("svg g.node").count() == 4
    # the timeline has a bar per step that ran and per for_each item
    assert page.locator(".bar-row").count() == 4 + 3
    # clicking a node opens its step
    page.click("g.node[data-step=each]")
    assert page.evaluate("document.getElementById('step-each').open") is True
    page.screenshot(path=str(project / "report.png"), full_page=True)
    page.close()


def test_report_file_is_self_contained(project: Path) -> None:
    page_path, _ = _report(project)
    text = page_path.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert "default-src 'none'" in text
    assert HOSTILE not in text
    assert text.count("<script>") == 1


def test_html_to_an_unwritable_place_is_a_clear_error(project: Path) -> None:
    write(project, WORKFLOW)
    (project / "hostile.txt").write_text("x\n")
    mux(project, "run", "wf.toml")
    done = mux(project, "show", "--html", str(project / "missing" / "r.html"))
    assert done.returncode == 1
    assert "cannot write" in done.stderr
    assert "Traceback" not in done.stderr
