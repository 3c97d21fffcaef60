"""Queueing `random` on DynamoDB Local through the API: a burst is admitted in the order its draw
window was drawn, and each visitor's own place, computed as a client does from its ticket and
the public documents, is the order in which it is let in."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import Api, FakeClock
from waitingroom import client
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer

pytestmark = pytest.mark.integration

MAX_ACTIVE = 4
DRAW_SECONDS = 10


def own_place(api: Api, ticket: str) -> client.Place:
    """What the visitor's client computes: the state and its slot's document, nothing else."""
    t = client.read_ticket(ticket)
    state = client.read_state(api.client.get("/rooms/demo/state").json())
    doc = api.client.get(f"/rooms/demo/slots/{t.slot}")
    assert doc.status_code == 200, doc.text
    return client.place(t, state, client.read_slot(doc.json()))


def status(api: Api, ticket: str) -> dict[str, Any]:
    r = api.client.get("/rooms/demo/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_random_room_admits_a_burst_in_the_order_each_visitor_computes(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    settings: dict[str, Any] = {"max_active": MAX_ACTIVE, "shards": 4, "straight_in": False}
    settings |= {"queueing": "random", "draw_seconds": DRAW_SECONDS}
    r = api.client.put("/admin/rooms/demo", headers=api.admin, json=settings)
    assert r.status_code == 201, r.text
    drainer.tick_room("demo")
    clock.advance(DRAW_SECONDS - clock.now % DRAW_SECONDS)  # a window starts
    burst: list[dict[str, Any]] = []
    for _ in range(2):
        with ThreadPoolExecutor(8) as pool:
            burst += [
                j.json() for j in pool.map(lambda _: api.client.post("/rooms/demo/join"), range(12))
            ]
        clock.advance(1)
    assert all(j["state"] != "admitted" for j in burst)
    clock.advance(DRAW_SECONDS + SETTLE_DELAY_SECONDS)
    assert drainer.tick_room("demo").admitted == MAX_ACTIVE
    clock.advance(1.1)

    places = {j["ticket"]: own_place(api, j["ticket"]) for j in burst}
    first = {t for t, p in places.items() if p.kind == "turn"}
    waiting = {t: p.position for t, p in places.items() if p.kind == "waiting"}
    assert len(first) == MAX_ACTIVE
    assert sorted(waiting.values()) == list(range(1, len(burst) - MAX_ACTIVE + 1))

    turns = [first]
    let_in: set[str] = set()
    while len(let_in) < len(burst):
        now_in = {j["ticket"] for j in burst if j["ticket"] not in let_in}
        now_in = {t for t in now_in if status(api, t).get("token")}
        assert now_in == turns[-1], "let in exactly those whose own place said it was their turn"
        for t in now_in:
            token = status(api, t)["token"]
            done = api.client.post(
                "/rooms/demo/complete", headers={"Authorization": f"Bearer {token}"}
            )
            assert done.status_code == 204
        let_in |= now_in
        n = len(turns)
        turns.append(
            {t for t, pos in waiting.items() if (n - 1) * MAX_ACTIVE < pos <= n * MAX_ACTIVE}
        )
        report = drainer.tick_room("demo")
        assert report.active <= MAX_ACTIVE
        clock.advance(1.1)

    by_number = sorted(burst, key=lambda j: j["number"])
    assert {j["ticket"] for j in by_number[:MAX_ACTIVE]} != first, "not the join order"
    audit = api.client.get("/admin/rooms/demo/audit", headers=api.admin).json()["entries"]
    draws = [e["details"] for e in audit if e["action"] == "draw"]
    assert [(d["size"], d["start"]) for d in draws] == [(len(burst), 0)]
