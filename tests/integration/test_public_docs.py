"""The public documents over HTTP on DynamoDB Local: their JSON, and what the edge may cache."""

from __future__ import annotations

import pytest

from tests.conftest import Api, FakeClock
from tests.integration.test_api import make_room
from waitingroom.domain import SETTLE_DELAY_SECONDS, rank_in_slot
from waitingroom.drainer import Drainer
from waitingroom.tokens import parse_ticket

pytestmark = pytest.mark.integration


def test_a_visitor_places_itself_from_the_state_and_its_slot(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    make_room(api, max_active=1, shards=4)
    tickets = []
    for _ in range(6):
        api.client.cookies.clear()
        tickets.append(api.client.post("/rooms/demo/join").json()["ticket"])
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    drainer.tick_room("demo")
    clock.advance(1.1)

    r = api.client.get("/rooms/demo/state")
    assert r.status_code == 200
    assert r.headers["cache-control"].startswith("public, max-age=1,")
    assert "stale-while-revalidate" in r.headers["cache-control"]
    assert "set-cookie" not in r.headers
    state = r.json()
    assert state["room"] == "demo" and state["status"] == "open"
    assert (state["settled_total"], state["consumed"], state["waiting"]) == (6, 1, 5)
    assert state["expected_rate"] > 0 and state["version"] >= 1

    seen = []
    for text in tickets:
        t = parse_ticket(api.service.secrets, text)
        r = api.client.get(f"/rooms/demo/slots/{t.slot}")
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        slot = r.json()
        assert slot["total"] == 6 and sum(slot["counts"]) == 6
        rank = slot["tickets_before"] + rank_in_slot(slot["counts"], t.k, t.shard)
        status = api.client.get(
            "/rooms/demo/status", headers={"Authorization": f"Bearer {text}"}
        ).json()
        if rank < state["consumed"]:
            assert status["state"] == "admitted"
        else:
            assert status["position"] == rank - state["consumed"] + 1
            seen.append(status["position"])
    assert sorted(seen) == [1, 2, 3, 4, 5]


def test_missing_slots_and_rooms_are_404s_the_edge_keeps_for_a_second(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    make_room(api)
    state = api.client.get("/rooms/demo/state").json()
    for slot, code in (
        (state["settled_through"] + 1, "slot_not_settled"),
        (2**40, "slot_not_settled"),
        (0, "no_such_slot"),
    ):
        r = api.client.get(f"/rooms/demo/slots/{slot}")
        assert r.status_code == 404, slot
        assert r.json()["error"] == code
        assert r.headers["cache-control"] == "public, max-age=1"
    for path in ("/rooms/nowhere/state", "/rooms/nowhere/slots/5"):
        r = api.client.get(path)
        assert r.status_code == 404 and r.json()["error"] == "unknown_room"
        assert r.headers["cache-control"] == "public, max-age=1"
    for bad in ("abc", "-1", str(2**41)):
        r = api.client.get(f"/rooms/demo/slots/{bad}")
        assert r.status_code == 422, bad
        assert "slot" in r.json()["message"]
    # a slot that settled empty long ago: final, the edge keeps its 404 for an hour
    api.client.post("/rooms/demo/join")
    clock.advance(30)
    api.client.post("/rooms/demo/join")
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    drainer.tick_room("demo")
    clock.advance(1.1)
    settled = api.client.get("/rooms/demo/state").json()["settled_through"]
    r = api.client.get(f"/rooms/demo/slots/{settled - 15}")
    assert r.status_code == 404 and r.json()["error"] == "slot_empty"
    assert r.headers["cache-control"] == "public, max-age=3600"
    r = api.client.get("/rooms/Bad_Room/state")
    assert r.status_code == 400 and r.json()["error"] == "invalid_room"
