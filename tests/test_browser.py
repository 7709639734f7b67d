"""Browser checks in Debian's Chromium, driven by Playwright; pages must work with no internet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Server

from tansiq.settings import Settings

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

if not Path(CHROMIUM).exists() and not os.environ.get("TANSIQ_REQUIRE_BROWSER"):
    pytest.skip(
        f"browser tests skipped: {CHROMIUM} missing (apt-get install -y chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_api_docs_render_offline(browser: Any, settings: Settings) -> None:
    server = Server(settings.data_path)
    try:
        page = browser.new_page()
        outside: list[str] = []
        page.on(
            "request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None
        )
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
        assert "tansiq node EG" in page.inner_text(".swagger-ui .info .title")
        assert page.locator(".opblock-summary-path", has_text="/api/objects").first.is_visible()
        assert outside == []  # everything the page needs is served by the node
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docs_try_it_out_writes_with_a_session(browser: Any, settings: Settings) -> None:
    """Logged in through the form, "Try it out" on /docs sends the session's CSRF token, so a
    state-changing route (here POST /api/tokens) works, not 403."""
    server = Server(settings.data_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/login")
        page.fill("#username", "admin")
        page.fill("#password", "admin-password-1")
        page.click("button[type=submit]")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
        op = page.locator(".opblock-post", has_text="/api/tokens").first
        op.locator(".opblock-summary").click()
        op.locator("button.try-out__btn").click()
        op.locator("textarea.body-param__text").fill('{"label": "from the docs page"}')
        with page.expect_response(lambda r: r.url.endswith("/api/tokens")) as answer:
            op.locator("button.execute").click()
        assert answer.value.status == 201, answer.value.text()
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docs_page_says_who_is_signed_in_and_logs_out(browser: Any, settings: Settings) -> None:
    """/docs shows "signed in as admin" and a Log out button: it posts to /logout with the
    session's CSRF token, lands on /login, and the old session cookie is refused from then on.
    The login page marks the node's name dir="auto" (an Arabic name reads right to left)."""
    import httpx

    server = Server(settings.data_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/login")
        assert page.inner_text('p[dir="auto"]') == "Egypt security and defence liaison"
        page.fill("#username", "admin")
        page.fill("#password", "admin-password-1")
        page.click("button[type=submit]")
        bar = page.locator("#session-bar")
        bar.get_by_role("button", name="Log out").wait_for(timeout=15000)
        assert "signed in as admin" in bar.inner_text()
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "tansiq_session_eg"]
        old = {"Cookie": f"{cookie['name']}={cookie['value']}"}
        assert httpx.get(server.url + "/api/session", headers=old).status_code == 200

        with page.expect_navigation():
            bar.get_by_role("button", name="Log out").click()
        assert page.url.startswith(server.url + "/login")
        assert httpx.get(server.url + "/api/session", headers=old).status_code == 401
        page.goto(server.url + "/docs")
        page.locator("#session-bar a", has_text="Log in").wait_for(timeout=15000)
    finally:
        server.stop()
