"""A person opens the room on the edge (nginx, as CloudFront in AWS), waits, and lands on the
guarded demo origin on the same host: one address for the room and the site, as `make dev` shows.

One visitor (plain HTTP) holds the room's only place; the browser waits behind it, sees its
place, and once that session completes it is admitted and sent to the origin through the edge,
where the guard lets it in with the host-only `waitingroom_token` cookie.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

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


def _console(errors: list[str]) -> str:
    return "the page logged errors:\n" + "\n".join(errors)
