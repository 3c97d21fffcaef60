"""The page as operators make it and visitors read it, in a real browser through the edge: a
branded room's title and colours, Japanese for a Japanese browser and a switch back to English
that is remembered, a paused room that says so, and an HTML page for an unknown room.

Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize

from devtools import dynamodb_local
from tests.browser.stack import Stack

SHOTS = dynamodb_local.PROJECT_ROOT / "artifacts" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


def _room(stack: Stack, room: str, **settings: object) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        r = client.put(f"/admin/rooms/{room}", headers=stack.admin, json=settings)
        assert r.status_code in (200, 201), r.text


def _someone_waits_ahead(stack: Stack, room: str) -> None:
    """Two visitors join first (max_active 1): the browser always has someone ahead."""
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        for _ in range(2):
            assert client.post(f"/rooms/{room}/join").status_code == 201


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, reduced_motion="reduce")
    yield ctx
    ctx.close()


def _watch(page: Page) -> list[str]:
    """Errors the page logs, a CSP violation among them."""
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def _waiting(page: Page) -> None:
    page.locator("body[data-state=waiting]").wait_for(state="attached", timeout=20_000)


def _css(page: Page, selector: str, prop: str) -> str:
    value = page.eval_on_selector(selector, f"e => getComputedStyle(e)[{prop!r}]")
    assert isinstance(value, str)
    return value


def test_a_branded_room_shows_its_title_colours_logo_and_message(
    stack: Stack, context: BrowserContext
) -> None:
    _room(
        stack,
        "brand",
        max_active=1,
        page_title="Acme Tickets <Summer Tour>",
        page_accent_color="#b91c1c",
        page_background_color="#fef3c7",
        page_message="Doors open at 19:00.\nOne ticket per person.",
        page_logo_url=f"{stack.origin_url}/logo.png",
    )
    _someone_waits_ahead(stack, "brand")
    page = context.new_page()
    problems = _watch(page)
    response = page.goto(f"{stack.edge_url}/rooms/brand")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "'sha256-" in csp and "unsafe-inline" not in csp
    _waiting(page)
    assert page.title().endswith("Acme Tickets <Summer Tour>")
    assert page.locator(".eyebrow").text_content() == "Acme Tickets <Summer Tour>"
    assert page.locator(".message").inner_text() == "Doors open at 19:00.\nOne ticket per person."
    assert _css(page, "#position", "color") == "rgb(185, 28, 28)"
    assert _css(page, "#progress-fill", "backgroundColor") == "rgb(185, 28, 28)"
    assert _css(page, "body", "backgroundColor") == "rgb(254, 243, 199)"
    assert page.locator("img.logo").get_attribute("src") == f"{stack.origin_url}/logo.png"
    page.screenshot(path=str(SHOTS / "branded-room.png"), full_page=True)
    blocked = [p for p in problems if "Content Security Policy" in p]
    assert not blocked, f"the room's look is allowed by the page's CSP: {blocked}"


def test_a_japanese_browser_reads_japanese_and_can_switch_to_english(
    stack: Stack, browser: Browser
) -> None:
    _room(stack, "nihongo", max_active=1)
    _someone_waits_ahead(stack, "nihongo")
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, reduced_motion="reduce", locale="ja-JP"
    )
    try:
        page = context.new_page()
        problems = _watch(page)
        page.goto(f"{stack.edge_url}/rooms/nihongo")
        _waiting(page)
        page.locator("html[lang=ja]").wait_for(state="attached", timeout=10_000)
        assert page.locator("#h-waiting").inner_text() == "順番待ちをしています"
        assert page.locator("#position-label").inner_text().startswith("あなたの順番")
        assert page.title().endswith("待合室 · nihongo")
        assert page.get_by_role("button", name="日本語").get_attribute("aria-pressed") == "true"
        page.screenshot(path=str(SHOTS / "japanese.png"), full_page=True)

        page.get_by_role("button", name="English").click()
        page.locator("html[lang=en]").wait_for(state="attached", timeout=10_000)
        assert page.locator("#h-waiting").inner_text() == "You're in line"
        assert page.locator("#position-label").inner_text().startswith("your place in line")
        assert page.title().endswith("Waiting room · nihongo")
        page.screenshot(path=str(SHOTS / "japanese-switched-to-english.png"), full_page=True)

        page.reload()  # the choice is remembered over the browser's own languages
        _waiting(page)
        page.locator("html[lang=en]").wait_for(state="attached", timeout=10_000)
        assert page.locator("#h-waiting").inner_text() == "You're in line"
        assert not problems, problems
    finally:
        context.close()


def test_a_paused_room_says_it_is_paused_and_keeps_the_place(
    stack: Stack, context: BrowserContext
) -> None:
    _room(stack, "pausing", max_active=1, status="paused")
    page = context.new_page()
    problems = _watch(page)
    page.goto(f"{stack.edge_url}/rooms/pausing")
    _waiting(page)
    state = page.locator("#room-state")
    state.filter(has_text="paused").wait_for(timeout=20_000)
    assert "Your place is kept" in state.inner_text()
    assert page.locator("#eta").inner_text() == "when the room resumes"
    assert page.locator("[data-view=waiting]").get_attribute("data-room-status") == "paused"
    page.screenshot(path=str(SHOTS / "paused-room.png"), full_page=True)
    assert not problems, problems


def test_an_unknown_room_is_an_html_page_in_a_browser(
    stack: Stack, context: BrowserContext
) -> None:
    page = context.new_page()
    response = page.goto(f"{stack.edge_url}/rooms/nosuchroom")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", level=1).inner_text() == "There is no waiting room here"
    assert "nosuchroom" in page.locator("main").inner_text()
    assert _css(page, "main", "borderRadius") == "16px", "styled by the page's own stylesheet"
    page.screenshot(path=str(SHOTS / "unknown-room.png"), full_page=True)
    with httpx.Client(base_url=stack.edge_url, timeout=10) as client:
        # the page route answers with the page whatever Accept says (a CDN may drop it)
        r = client.get("/rooms/nosuchroom", headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        r = client.get("/rooms/nosuchroom/state", headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.json()["error"] == "unknown_room"


TEMPLATE = """<!doctype html>
<html lang="en"><head>{{head}}<title>{{title}}</title></head>
<body><main><header class="brand">{{logo}}<p class="eyebrow">{{title}}</p></header>
<h2>Welcome to {{title}}</h2><p class="message">{{message}}</p>{{queue}}
<p class="meta">Room {{room}} · <a href="https://example.com/help">Help</a></p></main></body>
</html>"""


def test_a_rooms_own_template_keeps_the_live_queue_and_the_policy(
    stack: Stack, context: BrowserContext
) -> None:
    _room(
        stack,
        "custom",
        max_active=1,
        page_title="Custom & Co",
        page_message="Thanks for your patience",
        page_accent_color="#047857",
        page_template=TEMPLATE,
    )
    _someone_waits_ahead(stack, "custom")
    page = context.new_page()
    problems = _watch(page)
    page.goto(f"{stack.edge_url}/rooms/custom")
    _waiting(page)
    assert page.locator("h2").first.inner_text() == "Welcome to Custom & Co"
    assert page.locator(".message").inner_text() == "Thanks for your patience"
    assert page.locator("#position").inner_text().strip("~").isdigit()
    assert _css(page, "#position", "color") == "rgb(4, 120, 87)"
    page.screenshot(path=str(SHOTS / "custom-template.png"), full_page=True)
    assert not problems, problems


def test_a_scheduled_room_says_when_it_opens_and_a_closed_one_promises_no_wait(
    stack: Stack, context: BrowserContext
) -> None:
    import time

    _room(stack, "later", max_active=5, opens_at=time.time() + 3600)
    page = context.new_page()
    page.goto(f"{stack.edge_url}/rooms/later")
    _waiting(page)
    assert page.locator("#room-state").inner_text().startswith("The room opens at ")
    assert page.locator("#eta").inner_text().startswith("opens at ")
    page.screenshot(path=str(SHOTS / "scheduled-room.png"), full_page=True)

    _room(stack, "shut", max_active=5, status="closed")
    page.goto(f"{stack.edge_url}/rooms/shut")
    page.locator("body[data-state=closed]").wait_for(state="attached", timeout=20_000)
    text = page.locator("[data-view=closed]").inner_text()
    assert "This room is closed" in text
    assert not page.locator("[data-view=waiting]").is_visible()
    assert "wait" not in text.lower() and "minute" not in text.lower()
    page.screenshot(path=str(SHOTS / "closed-room.png"), full_page=True)
