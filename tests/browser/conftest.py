"""Playwright driving Debian's chromium against pytest-django's live server.

Skipped, saying why, where there is no browser: CI installs the `chromium` package
(.ci/run); Playwright's own browser downloads are never used.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KORDANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set KORDANT_SCREENSHOTS=docs to refresh the README's screenshots; otherwise they go to a temp dir.
SCREENSHOTS = os.environ.get("KORDANT_SCREENSHOTS")


@pytest.fixture
def browser(transactional_db, monkeypatch):
    """Chromium for one test. Not for the session: Playwright's sync API marks an event loop
    as running in this thread while it lives, and Django then refuses ORM calls as if they
    came from async code. The test's own ORM calls are synchronous, so the check is off for
    the test only; the database flush after it runs once Playwright has stopped."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (CI's .ci/run does)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(live_server, admin_user, browser):
    """A logged-in admin's tab."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto(f"{live_server.url}/admin/login/")
    tab.fill("#id_username", admin_user.username)
    tab.fill("#id_password", "password")
    tab.click("input[type=submit]")
    tab.wait_for_url(f"{live_server.url}/admin/")
    yield tab
    context.close()


@pytest.fixture
def screenshot(tmp_path):
    def save(tab, name: str) -> Path:
        directory = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        tab.screenshot(path=str(path), full_page=True)
        return path

    return save
