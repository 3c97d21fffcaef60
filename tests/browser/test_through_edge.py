"""A person opens the room on the edge (nginx, as CloudFront in AWS), waits, and lands on the
guarded demo origin on the same host: one address for the room and the site, as `make dev` shows.

One visitor (plain HTTP) holds the room's only place; the browser waits behind it, sees its
place, and once that session completes it is admitted and sent to the origin through the edge,
where the guard lets it in with the host-only `waitingroom_token` cookie.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog

from tests.browser.stack import ARTIFACTS, Stack

ROOM = "demo"

pytestmark = pytest.mark.browser


def _admitted_token(client: httpx.Client, ticket: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {ticket}"})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["state"] == "admitted":
            token: str = body["token"]
            return token
        time.sleep(0.5)
    raise AssertionError(f"the first visitor was not admitted within {timeout} s")


def test_a_visitor_waits_on_the_edge_and_lands_on_the_origin_on_the_same_host(
    stack: Stack, browser: Browser
) -> None:
    with httpx.Client(base_url=stack.edge_url, timeout=10) as edge:
        r = httpx.put(
            f"{stack.api_url}/admin/rooms/{ROOM}",
            json={"max_active": 1},
            headers=stack.admin,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["origin_url"] == f"{stack.edge_url}/"
        joined = edge.post(f"/rooms/{ROOM}/join")
        assert joined.status_code == 201, joined.text
        ahead = _admitted_token(edge, joined.json()["ticket"])

        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # a slot that has not settled yet is a 404 by design (CLIENTS.md §2); chromium logs
        # every failed fetch, so failed answers are checked by URL instead
        page.on(
            "console",
            lambda msg: (
                errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        failed: list[str] = []
        page.on("response", lambda resp: failed.append(resp.url) if resp.status >= 400 else None)
        hosts: set[str] = set()
        page.on("request", lambda req: hosts.add(req.url.split("/")[2]))
        try:
            page.goto(f"{stack.edge_url}/rooms/{ROOM}")
            page.wait_for_function(
                """() => {
                    const p = document.getElementById("position");
                    return !!p && Number(p.dataset.position) > 0;
                }""",
                timeout=25_000,
            )
            page.screenshot(path=str(ARTIFACTS / "through-edge-waiting.png"))

            done = edge.post(
                f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {ahead}"}
            )
            assert done.status_code == 204, done.text

            page.wait_for_url(f"{stack.edge_url}/", timeout=45_000)
            page.wait_for_selector("h1", timeout=10_000)
            assert page.locator("h1").inner_text() == "You're in"
            assert f"Room {ROOM}" in page.locator("body").inner_text()
            page.screenshot(path=str(ARTIFACTS / "through-edge-admitted.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "through-edge-failure.png"))
            raise
        finally:
            cookies = context.cookies()
            context.close()

    # one host for everything: the room, its documents and the origin all through the edge
    assert hosts == {stack.edge_url.removeprefix("http://")}
    token = [c for c in cookies if c["name"] == "waitingroom_token"]
    assert token and token[0]["path"] == "/"
    assert not errors, _console(errors)
    assert all(f"/rooms/{ROOM}/slots/" in url for url in failed), failed


def test_a_visitor_who_asked_for_a_page_lands_on_it_after_the_queue(
    stack: Stack, browser: Browser
) -> None:
    """The guard sends the page asked for along as return_to; the waiting page goes back to it."""
    room = f"{stack.api_url}/admin/rooms/{ROOM}"
    paused = httpx.put(room, json={"max_active": 50, "status": "paused"}, headers=stack.admin)
    assert paused.status_code == 200, paused.text
    context = browser.new_context()
    page = context.new_page()
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    try:
        page.goto(f"{stack.edge_url}/api/hello?x=1")
        page.wait_for_url(f"{stack.edge_url}/rooms/{ROOM}?return_to=%2Fapi%2Fhello%3Fx%3D1")
        page.wait_for_function(
            """() => {
                const p = document.getElementById("position");
                return !!p && Number(p.dataset.position) > 0;
            }""",
            timeout=25_000,
        )
        page.screenshot(path=str(ARTIFACTS / "return-to-waiting.png"))
        opened = httpx.put(room, json={"status": "open"}, headers=stack.admin)
        assert opened.status_code == 200, opened.text
        page.wait_for_url(f"{stack.edge_url}/api/hello?x=1", timeout=45_000)
        assert "hello, ticket" in page.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "return-to-landed.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "return-to-failure.png"))
        raise
    finally:
        context.close()
    assert visited[0] == f"{stack.edge_url}/rooms/{ROOM}?return_to=%2Fapi%2Fhello%3Fx%3D1"
    assert visited[-1] == f"{stack.edge_url}/api/hello?x=1"


@pytest.mark.parametrize(
    "attempt",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example/x", "javascript:alert(1)"],
)
def test_a_return_to_off_the_origin_lands_on_the_origin_root(
    stack: Stack, browser: Browser, attempt: str
) -> None:
    room = f"{stack.api_url}/admin/rooms/{ROOM}"
    opened = httpx.put(room, json={"max_active": 50, "status": "open"}, headers=stack.admin)
    assert opened.status_code == 200, opened.text
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        page.goto(f"{stack.edge_url}/rooms/{ROOM}?return_to={urllib.parse.quote(attempt)}")
        page.wait_for_url(f"{stack.edge_url}/", timeout=30_000)
        page.wait_for_selector("h1", timeout=10_000)
        assert page.locator("h1").inner_text() == "You're in"
    finally:
        context.close()
    assert not dialogs


def _console(errors: list[str]) -> str:
    return "the page logged errors:\n" + "\n".join(errors)
