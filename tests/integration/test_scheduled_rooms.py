"""Scheduled rooms: who joins before opening is drawn into a fair, recorded, random order."""

from __future__ import annotations

import pytest

from tests.conftest import TICKET_SECRET, Api, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS, draw_place
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, Joined, Waiting, WaitingRoom
from waitingroom.tokens import parse_ticket

pytestmark = pytest.mark.integration


def positions(service: WaitingRoom, tickets: list[Joined]) -> dict[int, Waiting | Admitted]:
    return {t.number: service.poll("launch", t.ticket) for t in tickets}


def test_the_pre_queue_is_drawn_at_opening_then_joiners_queue_behind(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    opens_at = clock() + 20
    cfg, _ = service.put_room("launch", {"max_active": 5, "opens_at": opens_at})
    assert cfg.status == "scheduled"
    early: list[Joined] = []
    for _ in range(4):  # people arrive over several seconds before opening
        early += [service.join("launch", None) for _ in range(10)]
        clock.advance(3)
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    assert drainer.tick_room("launch").admitted == 0  # not open yet: nobody admitted
    clock.advance(1.01)
    before = service.poll("launch", early[0].ticket)
    assert isinstance(before, Waiting) and not before.exact and before.opens_at == opens_at

    clock.now = opens_at + 0.5
    late = [service.join("launch", None) for _ in range(5)]  # after opening: plain FIFO
    clock.now = opens_at + 1 + SETTLE_DELAY_SECONDS + 0.1
    report = drainer.tick_room("launch")
    assert report.admitted == 5
    stats = service.stats("launch")
    assert stats["status"] == "open" and stats["prequeue_size"] == 40
    seed = stats["draw_seed"]
    assert seed and any(
        e["action"] == "open" and e["details"]["draw_seed"] == seed for e in service.audit("launch")
    )

    clock.advance(1.01)
    got = positions(service, early + late)
    admitted_numbers = {n for n, r in got.items() if isinstance(r, Admitted)}
    assert len(admitted_numbers) == 5 and admitted_numbers <= {t.number for t in early}
    # the early joiners' places are a permutation; the draw is not the join order
    early_places = {t.number: got[t.number] for t in early}
    waiting_places = sorted(r.position for r in early_places.values() if isinstance(r, Waiting))
    assert waiting_places == list(range(1, 36))
    by_join = [early_places[t.number] for t in sorted(early, key=lambda t: t.number)]
    order = [0 if isinstance(r, Admitted) else r.position for r in by_join]
    assert order != sorted(order)
    # the late joiners wait behind the whole pre-queue, in join order
    late_positions = [got[t.number] for t in sorted(late, key=lambda t: t.number)]
    assert [r.position for r in late_positions if isinstance(r, Waiting)] == list(range(36, 41))
    # anyone can recompute every place from the published seed and the ticket
    for t in early:
        ticket = parse_ticket([TICKET_SECRET], t.ticket)
        slot = service.settled_slot("launch", ticket.slot)
        assert slot is not None
        place = draw_place(slot.rank_of(ticket.k, ticket.shard), 40, seed)
        r = got[t.number]
        if place < 5:
            assert isinstance(r, Admitted)
        else:
            assert isinstance(r, Waiting) and r.position == place - 5 + 1


def test_opens_at_is_validated_and_frozen_after_the_draw(
    api: Api, clock: FakeClock, drainer: Drainer
) -> None:
    bad = [
        {"max_active": 5, "opens_at": "next tuesday"},
        {"max_active": 5, "opens_at": "2026-12-01T10:00:00"},  # no time zone
        {"max_active": 5, "status": "scheduled"},  # scheduled without opens_at
    ]
    for body in bad:
        r = api.client.put("/admin/rooms/sched", json=body, headers=api.admin)
        assert r.status_code == 422, r.text
        assert r.json()["message"]
    r = api.client.put(
        "/admin/rooms/sched",
        json={"max_active": 5, "opens_at": "2030-01-01T10:00:00Z"},
        headers=api.admin,
    )
    assert r.status_code == 201 and r.json()["status"] == "scheduled"
    # it may move before opening ...
    soon = clock() + 5
    r = api.client.put("/admin/rooms/sched", json={"opens_at": soon}, headers=api.admin)
    assert r.status_code == 200 and r.json()["opens_at"] == soon
    # ... but not once the pre-queue was drawn
    clock.advance(10)
    drainer.tick_room("sched")
    r = api.client.put("/admin/rooms/sched", json={"opens_at": clock() + 100}, headers=api.admin)
    assert r.status_code == 409 and "drawn" in r.json()["message"]
    # and a room created open cannot be scheduled later
    api.client.put("/admin/rooms/plain", json={"max_active": 5}, headers=api.admin)
    r = api.client.put("/admin/rooms/plain", json={"opens_at": clock() + 100}, headers=api.admin)
    assert r.status_code == 409
