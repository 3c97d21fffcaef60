"""What a waiting visitor and an operator are told when the line does not simply move: a
paused room, a scheduled one, the front of the line, a closed room's stats."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Api, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer

pytestmark = pytest.mark.integration


def _join(api: Api, room: str) -> dict[str, object]:
    r = api.client.post(f"/rooms/{room}/join")
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def _status(api: Api, room: str, ticket: object) -> dict[str, object]:
    r = api.client.get(f"/rooms/{room}/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_a_paused_room_says_so_keeps_the_place_and_promises_no_wait(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    api.client.put("/admin/rooms/calm", json={"max_active": 1}, headers=api.admin)
    tickets = [_join(api, "calm")["ticket"] for _ in range(3)]
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("calm")
    assert api.client.post("/admin/rooms/calm/pause", headers=api.admin).status_code == 200
    clock.advance(3)
    waiting = sorted(
        (a for a in (_status(api, "calm", t) for t in tickets) if a["state"] == "waiting"),
        key=lambda a: int(str(a["position"])),
    )
    front, back = waiting  # one of the three was let in before the pause
    assert back["line"] == "paused" and back["eta_seconds"] is None
    assert back["position"] == 2 and back["you_are_next"] is False
    assert "paused" in str(back["message"]) and "keep your place" in str(back["message"])
    assert front["you_are_next"] is True and str(front["message"]).startswith("You are next.")
    joined = _join(api, "calm")
    assert joined["line"] == "paused" and joined["eta_seconds"] is None
    stats = api.client.get("/admin/rooms/calm/stats", headers=api.admin).json()
    assert stats["admitting"] is False and stats["estimated_seconds_to_empty"] is None

    api.client.post("/admin/rooms/calm/resume", headers=api.admin)
    clock.advance(3)
    moving = [_status(api, "calm", t) for t in tickets]
    assert {a.get("line") for a in moving if a["state"] == "waiting"} == {"moving"}
    assert "You are number 2 in line." in [a.get("message") for a in moving]


def test_a_scheduled_room_says_it_has_not_opened(api: Api) -> None:
    opens = time.time() + 3600
    r = api.client.put(
        "/admin/rooms/drop", json={"max_active": 5, "opens_at": opens}, headers=api.admin
    )
    assert r.status_code in (200, 201), r.text
    joined = _join(api, "drop")
    assert joined["line"] == "scheduled" and joined["opens_at"] == pytest.approx(opens)
    assert "not opened yet" in str(joined["message"])


def test_a_closed_room_promises_no_emptying_time(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    api.client.put("/admin/rooms/shut", json={"max_active": 1}, headers=api.admin)
    for _ in range(3):
        _join(api, "shut")
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("shut")
    clock.advance(1)
    drainer.tick_room("shut")
    open_stats = api.client.get("/admin/rooms/shut/stats", headers=api.admin).json()
    assert open_stats["admitting"] is True
    assert open_stats["estimated_seconds_to_empty"] is not None
    api.client.post("/admin/rooms/shut/close", headers=api.admin)
    stats = api.client.get("/admin/rooms/shut/stats", headers=api.admin).json()
    assert stats["status"] == "closed" and stats["waiting"] == 2
    assert stats["admitting"] is False and stats["estimated_seconds_to_empty"] is None
