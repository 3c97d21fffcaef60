"""An empty room lets a visitor in a real browser straight through: the page never shows the
line, and the visitor lands on the guarded origin (through the edge, one host) at once."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser.stack import ARTIFACTS, Stack

ROOM = "demo"

pytestmark = pytest.mark.browser

# every view the page shows, as it shows it, kept in sessionStorage (the origin is on the same
# host behind the edge, so it can be read back there)
RECORD_VIEWS = """
new MutationObserver(() => {
  const state = document.body && document.body.getAttribute("data-state");
  const seen = sessionStorage.getItem("views") || "";
  if (state && !seen.endsWith(state)) { sessionStorage.setItem("views", seen + " " + state); }
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ["data-state"]});
"""


def _ticked(stack: Stack, after: int, timeout: float = 15) -> None:
    """Wait for the drainer's next tick of the room (its state's version grows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{stack.api_url}/rooms/{ROOM}/state", timeout=5)
        if r.status_code == 200 and r.json()["version"] > after:
            return
        time.sleep(0.2)
    raise AssertionError("the drainer did not tick the room")


def test_an_empty_room_admits_the_visitor_with_no_queue_page(
    stack: Stack, browser: Browser
) -> None:
    r = httpx.put(
        f"{stack.api_url}/admin/rooms/{ROOM}",
        json={"max_active": 20, "straight_in": True},
        headers=stack.admin,
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text
    version = httpx.get(f"{stack.api_url}/rooms/{ROOM}/state", timeout=5).json()["version"]
    _ticked(stack, version + 1)  # the change nudged the drainer: places are minted ahead

    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(RECORD_VIEWS)
    try:
        started = time.monotonic()
        page.goto(f"{stack.edge_url}/rooms/{ROOM}")
        page.wait_for_url(f"{stack.edge_url}/", timeout=15_000)
        page.wait_for_selector("h1", timeout=10_000)
        took = time.monotonic() - started
        assert page.locator("h1").inner_text() == "You're in"
        views = str(page.evaluate("() => sessionStorage.getItem('views') || ''")).split()
        page.screenshot(path=str(ARTIFACTS / "straight-in-origin.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "straight-in-failure.png"))
        raise
    finally:
        cookies = context.cookies()
        context.close()
    assert "waiting" not in views, f"the page showed the line: {views}"
    assert views and views[-1] == "admitted", views
    assert [c for c in cookies if c["name"] == "waitingroom_token"]
    assert not errors, errors
    assert took < 5, f"from the room's address to the origin took {took:.1f} s"
