"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright's own browser download needs the internet, so the tests launch the
system Chromium (`TRACKER_CHROMIUM`, default /usr/bin/chromium) and fail, never
skip, when it is missing: a missing browser must not pass CI silently.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API keeps an asyncio loop running in the main thread for as
# long as the browser is open, and Django refuses ORM calls while a loop runs.
# Nothing here is async: the ORM calls come from the test and the live server's
# own thread. Set at import, before the session-scoped browser starts, because
# other tests in the same process run while that loop is still alive.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("TRACKER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
# Committed screenshots for the README; scripts/test points this elsewhere so that
# a test run does not rewrite files in the checkout.
SCREENSHOT_DIR = Path(
    os.environ.get(
        "TRACKER_SCREENSHOT_DIR",
        Path(__file__).resolve().parents[2] / "docs" / "screenshots",
    )
)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import Error, sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: "
            "apt-get install chromium, or set TRACKER_CHROMIUM to its path"
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A page in a fresh context (no cookies, no storage) with relative URLs on the live server."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, "dashboard.png"): the visible part of the page, into SCREENSHOT_DIR."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=SCREENSHOT_DIR / name, animations="disabled")

    return take
