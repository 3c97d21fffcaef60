"""Straight through when there is room, on DynamoDB Local: an idle room lets joins in at once,
a burst never takes more than max_active places, and whoever queues is let in in line order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from tests.conftest import TICKET_SECRET, Api, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.errors import RoomFull
from waitingroom.planning import POOL_MIN
from waitingroom.service import Admitted, Joined, Waiting, WaitingRoom
from waitingroom.store import Store

pytestmark = pytest.mark.integration


def settle(clock: FakeClock) -> None:
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)


def test_a_burst_into_an_idle_room_never_exceeds_max_active_and_queues_in_order(
    store: Store, drainer: Drainer, clock: FakeClock
) -> None:
    containers = [
        WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock) for _ in range(4)
    ]
    containers[0].put_room("demo", {"max_active": 20, "session_seconds": 600})
    drainer.tick_room("demo")
    clock.advance(1.01)
    with ThreadPoolExecutor(12) as pool:
        burst = list(pool.map(lambda i: containers[i % 4].join("demo", None), range(60)))
    straight = [j for j in burst if isinstance(j.status, Admitted)]
    queued = sorted((j for j in burst if isinstance(j.status, Waiting)), key=lambda j: j.number)
    assert len(straight) == POOL_MIN  # the places minted ahead, each to one visitor
    tokens = [j.status.token for j in straight if isinstance(j.status, Admitted)]
    assert len(set(tokens)) == POOL_MIN
    subjects = {jwt.decode(t, options={"verify_signature": False})["sub"] for t in tokens}
    assert len(subjects) == POOL_MIN

    svc = containers[0]
    admitted_in_order: list[Joined] = []
    for _ in range(3):
        settle(clock)
        report = drainer.tick_room("demo")
        assert report.active <= 20
        clock.advance(1.01)
        now_in = [j for j in queued if isinstance(svc.poll("demo", j.ticket), Admitted)]
        admitted_in_order = now_in
    # the ten places left went to the ten first in line, by queue number; the rest still wait
    assert admitted_in_order == queued[:10]
    late = svc.join("demo", None)
    assert isinstance(late.status, Waiting) and late.number > queued[-1].number
    stats = svc.stats("demo")
    assert (stats["active"], stats["waiting"]) == (20, 40)  # the late one has not settled


def test_the_api_answers_a_join_in_an_idle_room_with_the_token(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    r = api.client.put(
        "/admin/rooms/demo",
        headers=api.admin,
        json={"max_active": 5, "origin_url": "https://shop.example/"},
    )
    assert r.status_code == 201, r.text
    drainer.tick_room("demo")
    clock.advance(2.1)  # past the API's cached config and state
    joined = api.client.post("/rooms/demo/join")
    assert joined.status_code == 201, joined.text
    body = joined.json()
    assert body["state"] == "admitted" and body["position"] == 0
    assert body["origin_url"] == "https://shop.example/"
    assert joined.cookies.get("waitingroom_token") == body["token"]
    again = api.client.get(
        "/rooms/demo/status", headers={"Authorization": f"Bearer {body['ticket']}"}
    )
    assert again.status_code == 200 and again.json()["token"] == body["token"]
    done = api.client.post(
        "/rooms/demo/complete", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert done.status_code == 204
    drainer.tick_room("demo")
    assert api.service.stats("demo")["completed_total"] == 1


def test_a_full_room_that_keeps_no_line_answers_503_room_full(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    bad = api.client.put(
        "/admin/rooms/demo", headers=api.admin, json={"max_active": 1, "queueing": "lottery"}
    )
    assert bad.status_code == 422 and "queueing" in bad.text
    r = api.client.put(
        "/admin/rooms/demo", headers=api.admin, json={"max_active": 1, "queueing": "reject"}
    )
    assert r.status_code == 201, r.text
    drainer.tick_room("demo")
    clock.advance(2.1)
    assert api.client.post("/rooms/demo/join").json()["state"] == "admitted"
    full = api.client.post("/rooms/demo/join")
    assert full.status_code == 503
    assert full.json()["error"] == "room_full" and "full" in full.json()["message"]
    assert int(full.headers["Retry-After"]) > 0


def test_a_burst_into_a_reject_room_is_let_in_up_to_its_places_and_nobody_waits(
    store: Store, drainer: Drainer, clock: FakeClock
) -> None:
    containers = [
        WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock) for _ in range(4)
    ]
    containers[0].put_room("demo", {"max_active": 30, "queueing": "reject"})
    drainer.tick_room("demo")
    clock.advance(1.01)

    def join(i: int) -> Joined | None:
        try:
            return containers[i % 4].join("demo", None)
        except RoomFull:
            return None

    with ThreadPoolExecutor(12) as pool:
        burst = list(pool.map(join, range(45)))
    held = [j for j in burst if j is not None]
    # the pool's places at once, the rest of the room's places as numbers; only then "full"
    assert sum(isinstance(j.status, Admitted) for j in held) == POOL_MIN
    assert len(held) == 30 and burst.count(None) == 15
    settle(clock)
    report = drainer.tick_room("demo")
    assert (report.admitted, report.waiting) == (30 - POOL_MIN, 0)
    clock.advance(1.01)
    assert all(isinstance(containers[1].poll("demo", j.ticket), Admitted) for j in held)
