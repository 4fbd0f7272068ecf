"""The built site in a real browser (headless Chromium from Debian, driven by playwright): pages render
without console errors, every image loads, and search finds "closure". Run by ``make docs-check``."""

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

SITE = Path(__file__).parents[1] / "build" / "docs" / "html"
CHROMIUM = shutil.which("chromium")
PAGES = ["index.html", "tutorials/05_closures.html", "api/generated/eqfree.closures.Closure.html",
         "cli.html", "concepts.html"]

pytestmark = [
    pytest.mark.skipif(not (SITE / "index.html").is_file(), reason="no built site: run `make docs` first"),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make docs-check` installs Debian's package"),
]


@pytest.fixture(scope="module")
def site():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def visit(browser, url):
    """Open ``url``; return the page, its console errors and failed requests."""
    page = browser.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.on("response", lambda reply: errors.append(f"{reply.status}: {reply.url}") if reply.status >= 400 else None)
    page.goto(url, wait_until="networkidle")
    return page, errors


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_with_its_images(site, browser, path):
    page, errors = visit(browser, f"{site}/{path}")
    assert page.locator("h1").count() >= 1
    broken = page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [] and errors == []
    if path.startswith("tutorials/"):
        assert page.evaluate("document.images.length") >= 1  # the tutorial's figures are on its page


def test_search_finds_closure(site, browser):
    page, errors = visit(browser, f"{site}/search.html?q=closure")
    page.wait_for_selector("#search-results li", timeout=20_000)
    assert page.locator("#search-results li").count() >= 3 and errors == []
