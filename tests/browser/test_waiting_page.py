"""A person in a real browser waits in the demo room and lands on the guarded demo origin.

Three visitors (plain HTTP) join first with max_active 1: the first is let in, so the browser
waits behind two. A reload keeps the same ticket and a place no further back; completing the
sessions ahead makes the browser's position fall, until it is admitted and redirected to the
origin, which lets it in with the `waitingroom_token` cookie.

The page computes its place from its ticket and the room's public documents (CLIENTS.md): the
positions it shows are the ones the API's /status gives, and while it waits it asks only for the
room state (and its slot document once), never /status.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize

from tests.browser.stack import ARTIFACTS, Stack

ROOM = "demo"
STORE_KEY = f"waitingroom:ticket:{ROOM}"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}

pytestmark = pytest.mark.browser


def _join(client: httpx.Client, room: str = ROOM) -> str:
    r = client.post(f"/rooms/{room}/join")
    assert r.status_code == 201, r.text
    ticket: str = r.json()["ticket"]
    return ticket


def _admit_next(
    client: httpx.Client, waiting: list[str], timeout: float = 20, room: str = ROOM
) -> str:
    """Poll the waiting tickets like visitors do until one is admitted (which picks its place
    up); drop it from `waiting` and return its admission token. Within one second of joins the
    queue order is by random shard, so which one goes first is not known in advance."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ticket in waiting:
            r = client.get(f"/rooms/{room}/status", headers={"Authorization": f"Bearer {ticket}"})
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            if body["state"] == "admitted":
                waiting.remove(ticket)
                token: str = body["token"]
                return token
        time.sleep(0.5)
    raise AssertionError(f"none of {len(waiting)} visitors was admitted within {timeout} s")


def _complete(client: httpx.Client, token: str) -> None:
    r = client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204, r.text


def _exact_position(page: Page, below: int | None = None, timeout: float = 25) -> int:
    """Wait until the page shows an exact position (below `below`, if given); return it."""
    page.wait_for_function(
        """(below) => {
            const p = document.getElementById("position");
            if (!p || p.dataset.exact !== "true" || !p.dataset.position) return false;
            const n = Number(p.dataset.position);
            return n > 0 && (below === null || n < below);
        }""",
        arg=below,
        timeout=timeout * 1000,
    )
    return int(page.locator("#position").get_attribute("data-position") or "0")


def _server_place(client: httpx.Client, ticket: str, room: str = ROOM) -> dict[str, Any]:
    r = client.get(f"/rooms/{room}/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["state"] == "waiting", body
    return body


def _stored_ticket(page: Page, room: str = ROOM) -> str:
    key = f"waitingroom:ticket:{room}"
    raw = page.evaluate(f"() => localStorage.getItem({json.dumps(key)})")
    assert isinstance(raw, str), "the page keeps its place in localStorage"
    ticket = json.loads(raw)["ticket"]
    assert isinstance(ticket, str) and ticket
    return ticket


def test_a_visitor_waits_keeps_the_place_across_a_reload_and_lands_on_the_origin(
    stack: Stack, browser: Browser
) -> None:
    started = time.monotonic()
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        r = client.put(
            f"/admin/rooms/{ROOM}",
            headers=stack.admin,
            json={
                "max_active": 1,
                "origin_url": f"{stack.origin_url}/",
                "session_seconds": 30,
                "pickup_seconds": 20,
            },
        )
        assert r.status_code in (200, 201), r.text
        ahead = [_join(client) for _ in range(3)]
        in_origin = _admit_next(client, ahead)  # one is in: two wait ahead of the browser

        context = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, reduced_motion="reduce"
        )
        page = context.new_page()
        problems: list[str] = []

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
                problems.append(f"{msg.text} ({msg.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        try:
            page.goto(f"{stack.api_url}/rooms/{ROOM}")
            first = _exact_position(page)
            assert first > 1, "two visitors are still ahead"
            ticket = _stored_ticket(page)
            server = _server_place(client, ticket)
            assert (server["position"], server["position_is_exact"]) == (first, True)
            assert page.locator("#ahead").inner_text().strip() == str(first - 1)
            assert page.locator("#eta").inner_text().strip()
            assert page.locator("#updated").inner_text().count(":") == 2  # HH:MM:SS
            assert int(page.locator("#progress").get_attribute("aria-valuenow") or "-1") >= 0
            assert page.locator("[aria-live=polite]").first.inner_text().strip()
            page.screenshot(path=str(ARTIFACTS / "waiting-phone.png"), full_page=True)

            page.reload()
            again = _exact_position(page)
            assert _stored_ticket(page) == ticket, "a reload keeps the same ticket"
            assert again <= first, "a reload never moves the visitor back"

            _complete(client, in_origin)
            in_origin = _admit_next(client, ahead)
            fallen = _exact_position(page, below=again)
            assert fallen < again, "the position falls as people ahead are let in"
            assert _server_place(client, ticket)["position"] == fallen
            # reduced motion: the bar is drawn at its value at once, no animation to wait for
            done = int(page.locator("#progress").get_attribute("aria-valuenow") or "0")
            assert _stored(page)["first"] == first, "the bar measures from the first exact place"
            assert done == round(100 * (first - fallen) / first)
            bar, fill = (
                page.locator("#progress").bounding_box(),
                page.locator("#progress-fill").bounding_box(),
            )
            assert bar is not None and fill is not None
            assert abs(fill["width"] / bar["width"] * 100 - done) < 3
            page.screenshot(path=str(ARTIFACTS / "waiting-next-phone.png"), full_page=True)

            _complete(client, in_origin)
            in_origin = _admit_next(client, ahead)
            assert not ahead
            _complete(client, in_origin)

            page.wait_for_url(f"{stack.origin_url}/**", timeout=30_000)
            page.get_by_role("heading", name="You're in").wait_for(timeout=10_000)
            assert ROOM in page.locator("body").inner_text()
            page.screenshot(path=str(ARTIFACTS / "arrived-phone.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            context.close()
        assert not problems, f"the page logged errors: {problems}"
    assert time.monotonic() - started < 90, "the browser journey stays under 90 s"


def _state(page: Page, state: str, timeout: float = 15) -> None:
    page.locator(f"body[data-state={state}]").wait_for(state="attached", timeout=timeout * 1000)


def _poll_now(page: Page) -> None:
    """What a visitor coming back to the tab does: the page checks its place at once."""
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")


def _stored(page: Page) -> dict[str, Any]:
    raw = page.evaluate(f"() => localStorage.getItem({json.dumps(STORE_KEY)})")
    assert isinstance(raw, str)
    rec: dict[str, Any] = json.loads(raw)
    return rec


def test_the_page_rejoins_for_a_bad_ticket_rides_out_an_outage_and_can_join_again(
    stack: Stack, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    # the page sends back the state version it saw (?v=N): match the route with or without it
    status_url = re.compile(re.escape(f"{stack.api_url}/rooms/{ROOM}/status") + r"(\?.*)?$")
    state_url = f"{stack.api_url}/rooms/{ROOM}/state"
    try:
        page.goto(f"{stack.api_url}/rooms/{ROOM}")
        _state(page, "waiting")
        # a ticket the API no longer accepts (e.g. signed with a retired secret): one new place
        page.evaluate(
            f"() => localStorage.setItem({json.dumps(STORE_KEY)}, "
            "JSON.stringify({ticket: 'not-a-ticket', idem: 'wr-old'}))"
        )
        page.reload()
        _state(page, "waiting")
        rec = _stored(page)
        assert rec["ticket"] != "not-a-ticket" and rec["idem"] != "wr-old"
        ticket = rec["ticket"]

        # the API is down: 503 with Retry-After; the place is kept and the page says so
        page.route(
            state_url,
            lambda route: route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body='{"error": "unavailable", "message": "retry in a few seconds"}',
            ),
        )
        _poll_now(page)
        page.locator("body[data-connection=reconnecting]").wait_for(state="attached")
        assert "Reconnecting" in page.locator("#note").inner_text()
        page.screenshot(path=str(ARTIFACTS / "reconnecting-phone.png"))
        page.unroute(state_url)
        page.locator("body[data-connection=ok]").wait_for(state="attached", timeout=15_000)
        assert page.locator("#note").inner_text() == ""
        assert _stored(page)["ticket"] == ticket, "an outage never costs the place"

        # the place ended (reclaimed or completed): the check of a reloaded ticket says so, and
        # the page offers a new one
        page.route(
            status_url,
            lambda route: route.fulfill(
                status=410,
                headers={"Content-Type": "application/json"},
                body='{"error": "expired", "message": "this ticket\'s session has expired"}',
            ),
        )
        page.reload()
        _state(page, "ended")
        page.screenshot(path=str(ARTIFACTS / "ended-phone.png"))
        page.unroute(status_url)
        page.get_by_role("button", name="Join again").click()
        _state(page, "waiting")
        assert _stored(page)["ticket"] != ticket, "joining again is a new place"
    finally:
        context.close()


def test_a_closed_room_says_so(stack: Stack, browser: Browser) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        r = client.put(
            "/admin/rooms/closed-room",
            headers=stack.admin,
            json={"max_active": 1, "status": "closed"},
        )
        assert r.status_code in (200, 201), r.text
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"{stack.api_url}/rooms/closed-room")
        _state(page, "closed")
        assert page.get_by_role("heading", name="This room is closed").is_visible()
    finally:
        context.close()


def test_the_page_reads_well_on_a_desktop(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(f"{stack.api_url}/rooms/{ROOM}")
        page.locator("body[data-state=waiting]").wait_for(timeout=15_000)
        box = page.locator("main").bounding_box()
        assert box is not None and box["width"] <= 34 * 16 + 1, "a readable column, not full width"
        page.screenshot(path=str(ARTIFACTS / "waiting-desktop.png"))
    finally:
        context.close()


def _quiet_room(client: httpx.Client, stack: Stack, room: str) -> list[str]:
    """A room of its own with max_active 1: one visitor let in, two waiting; their tickets."""
    r = client.put(
        f"/admin/rooms/{room}",
        headers=stack.admin,
        json={"max_active": 1, "session_seconds": 120, "pickup_seconds": 60},
    )
    assert r.status_code in (200, 201), r.text
    ahead = [_join(client, room) for _ in range(3)]
    _admit_next(client, ahead, room=room)
    return ahead


def _api_path(url: str, stack: Stack) -> str:
    return url.removeprefix(stack.api_url).split("?")[0]


def test_while_waiting_the_page_asks_only_the_public_documents(
    stack: Stack, browser: Browser
) -> None:
    room = "quiet-room"
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        _quiet_room(client, stack, room)
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        seen: list[tuple[float, str, str]] = []
        page.on(
            "request",
            lambda req: seen.append((time.monotonic(), req.method, _api_path(req.url, stack))),
        )
        try:
            page.goto(f"{stack.api_url}/rooms/{room}")
            shown = _exact_position(page)
            assert shown == 3, "two visitors wait ahead of the browser"
            ticket = _stored_ticket(page, room)
            server = _server_place(client, ticket, room)
            assert (server["position"], server["position_is_exact"]) == (shown, True)

            watched_from = time.monotonic()
            page.wait_for_timeout(30_000)
            watched = time.monotonic() - watched_from
            while_exact = [path for t, _, path in seen if t >= watched_from]
            paths = [path for _, _, path in seen]
            assert f"/rooms/{room}/status" not in paths, "the place is computed, not asked for"
            assert paths.count(f"/rooms/{room}/join") == 1
            assert paths.count(f"/rooms/{room}/slots/{_ticket_slot(ticket)}") <= 1, (
                "the slot document is read once"
            )
            looks = while_exact.count(f"/rooms/{room}/state")
            assert looks >= 1, "the page keeps looking at the room's state"
            assert set(while_exact) == {f"/rooms/{room}/state"}, while_exact
            assert int(page.locator("#position").get_attribute("data-position") or "0") == shown
            print(
                f"\nwhile waiting at place {shown}: {looks} state requests in {watched:.0f} s "
                f"({60 * looks / watched:.1f}/min), 0 /status; whole visit: "
                + ", ".join(f"{p} x{paths.count(p)}" for p in sorted(set(paths)) if "/rooms/" in p)
            )
        finally:
            context.close()


def _ticket_slot(ticket: str) -> int:
    payload = ticket.split(".")[0]
    return int(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).split(b":")[1])


def _altered(ticket: str) -> str:
    """The same ticket one place further forward in its slot (k - 1, or another shard)."""
    body, mac = ticket.split(".")
    room, slot, shard, k, joined = (
        base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split(":")
    )
    new_k = int(k) - 1 if int(k) > 1 else int(k)
    new_shard = int(shard) if new_k != int(k) else (int(shard) + 1) % 256
    payload = f"{room}:{slot}:{new_shard}:{new_k}:{joined}".encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + "." + mac


# Records every place the page shows, with the ticket stored when it shows it.
SHOWN_SCRIPT = """
window.__shown = [];
new MutationObserver(() => {
    const p = document.getElementById("position");
    const raw = localStorage.getItem(STORE_KEY);
    if (p && p.dataset.position) {
        window.__shown.push([raw ? JSON.parse(raw).ticket : null, p.dataset.position]);
    }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-position"]});
"""


def test_a_ticket_altered_in_storage_never_shows_a_place(stack: Stack, browser: Browser) -> None:
    room = "altered-room"
    key = f"waitingroom:ticket:{room}"
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        _quiet_room(client, stack, room)
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(script=SHOWN_SCRIPT.replace("STORE_KEY", json.dumps(key)))
    page = context.new_page()
    answers: list[tuple[str, int]] = []
    page.on("response", lambda res: answers.append((_api_path(res.url, stack), res.status)))
    try:
        page.goto(f"{stack.api_url}/rooms/{room}")
        _exact_position(page)
        ticket = _stored_ticket(page, room)
        forged = _altered(ticket)
        page.evaluate(
            f"(t) => {{ const r = JSON.parse(localStorage.getItem({json.dumps(key)}));"
            f" r.ticket = t; localStorage.setItem({json.dumps(key)}, JSON.stringify(r)); }}",
            forged,
        )
        answers.clear()
        page.reload()
        _exact_position(page)
        rejoined = _stored_ticket(page, room)
        assert rejoined not in (ticket, forged), "the page took a new place"
        shown = page.evaluate("() => window.__shown")
        assert shown and all(t != forged for t, _ in shown), shown
        calls = [(path, st) for path, st in answers if path.startswith(f"/rooms/{room}/")]
        assert calls[0] == (f"/rooms/{room}/status", 401), (
            "the stored ticket is checked before any place is computed from it",
            calls,
        )
    finally:
        context.close()
