"""Queueing `random` (memory store): who joins within one draw window is drawn into an order
fixed by a recorded seed, not by when they joined; windows are served in order; max_active
holds; anyone can recompute every place from the slot documents and the audit trail."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import ADMIN_KEY, TICKET_SECRET, FakeClock, wired_app
from tests.unit.test_service_memory import fresh, settle
from waitingroom.cli import build_parser
from waitingroom.domain import (
    SettledSlot,
    draw_place,
    draw_windows,
    take_tickets,
    tickets_at_ranks,
)
from waitingroom.drainer import DORMANT, Drainer
from waitingroom.planning import POOL_MIN
from waitingroom.service import Admitted, Joined, Waiting, WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import StoreUnavailable
from waitingroom.store.memory import MemoryStore

DRAW_SECONDS = 10


def random_room(svc: WaitingRoom, drainer: Drainer, clock: FakeClock, max_active: int) -> None:
    settings = {"queueing": "random", "draw_seconds": DRAW_SECONDS, "straight_in": False}
    svc.put_room("demo", {"shards": 4, "max_active": max_active, **settings})
    drainer.tick_room("demo")
    clock.advance(DRAW_SECONDS - clock.now % DRAW_SECONDS)  # the start of a draw window


def join_over(svc: WaitingRoom, clock: FakeClock, slots: int, per_slot: int) -> list[Joined]:
    joined = []
    for _ in range(slots):
        joined += [svc.join("demo", None) for _ in range(per_slot)]
        clock.advance(1)
    assert all(isinstance(j.status, Waiting) for j in joined)
    return joined


def read_ticket_payload(ticket: str) -> tuple[int, int, int]:
    """(slot, shard, k) from a ticket's payload `room:slot:shard:k:joined_ms` (CLIENTS.md §1)."""
    payload = ticket.split(".")[0]
    fields = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split(":")
    return int(fields[1]), int(fields[2]), int(fields[3])


def drawn_place(svc: WaitingRoom, j: Joined) -> int:
    """The place a client computes from its ticket and the slot's public document."""
    slot, shard, k = read_ticket_payload(j.ticket)
    return svc.slot_document("demo", slot).drawn_rank(k, shard)


def let_in_turns(
    svc: WaitingRoom, drainer: Drainer, clock: FakeClock, joined: list[Joined], max_active: int
) -> list[set[str]]:
    """Tick until everyone is in, each admitted visitor leaving at once; who came in each turn."""
    turns: list[set[str]] = []
    seen: set[str] = set()
    while len(seen) < len(joined) and len(turns) < 4 * len(joined):
        report = drainer.tick_room("demo")
        assert report.active <= max_active
        fresh(clock)
        now_in: set[str] = set()
        for j in joined:
            status = svc.poll("demo", j.ticket) if j.ticket not in seen else None
            if isinstance(status, Admitted):
                now_in.add(j.ticket)
                svc.complete("demo", status.token)
        assert len(now_in) <= max_active
        turns.append(now_in)
        seen |= now_in
        clock.advance(1)
    assert len(seen) == len(joined)
    return turns


def test_a_window_is_admitted_in_its_drawn_order_not_in_join_order(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    random_room(memory_service, memory_drainer, clock, max_active=3)
    joined = join_over(memory_service, clock, slots=3, per_slot=10)
    settle(clock)
    report = memory_drainer.tick_room("demo")  # the window is still open: nothing settles
    assert (report.settled_slots, report.admitted) == (0, 0)
    clock.advance(DRAW_SECONDS)
    assert memory_drainer.tick_room("demo").admitted == 3
    fresh(clock)
    places = {j.ticket: drawn_place(memory_service, j) for j in joined}
    turns = let_in_turns(memory_service, memory_drainer, clock, joined, max_active=3)
    start = min(places.values())
    assert sorted(places.values()) == list(range(start, start + 30))  # a permutation
    in_order = [sorted(places[t] for t in turn) for turn in turns if turn]
    assert [p for turn in in_order for p in turn] == list(range(start, start + 30))
    assert [j.number for j in sorted(joined, key=lambda j: places[j.ticket])] != sorted(
        j.number for j in joined
    )  # not the join order


def test_the_recorded_seed_fixes_the_order_and_anyone_can_recompute_it(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    random_room(memory_service, memory_drainer, clock, max_active=50)
    joined = join_over(memory_service, clock, slots=2, per_slot=8)
    clock.advance(DRAW_SECONDS + 3)
    memory_drainer.tick_room("demo")
    draws = [e for e in memory_service.audit("demo") if e["action"] == "draw"]
    assert len(draws) == 1
    draw = draws[0]["details"]
    assert (draw["size"], len(draw["seed"])) == (16, 32)
    for j in joined:
        slot, shard, k = read_ticket_payload(j.ticket)
        doc = memory_service.slot_document("demo", slot)
        assert (doc.draw_start, doc.draw_size, doc.draw_seed) == (
            draw["start"],
            draw["size"],
            draw["seed"],
        )
        natural = doc.rank_of(k, shard) - draw["start"]
        expected = draw["start"] + draw_place(natural, draw["size"], draw["seed"])
        assert drawn_place(memory_service, j) == expected
        status = memory_service.poll("demo", j.ticket)
        assert isinstance(status, Admitted)


def test_windows_are_served_in_order(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    random_room(memory_service, memory_drainer, clock, max_active=4)
    first = join_over(memory_service, clock, slots=2, per_slot=6)
    clock.advance(DRAW_SECONDS - 2)
    second = join_over(memory_service, clock, slots=2, per_slot=6)
    clock.advance(DRAW_SECONDS + 3)
    turns = let_in_turns(memory_service, memory_drainer, clock, first + second, max_active=4)
    order = [t for turn in turns for t in sorted(turn)]
    first_tickets = {j.ticket for j in first}
    assert set(order[:12]) == first_tickets  # every one of the first window before the second
    seeds = {
        memory_service.slot_document("demo", read_ticket_payload(j.ticket)[0]).draw_seed
        for j in first + second
    }
    assert len(seeds) == 2  # one draw, one seed, per window


def test_switching_to_fifo_mid_window_keeps_the_drawn_order_already_published(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    random_room(memory_service, memory_drainer, clock, max_active=4)
    drawn = join_over(memory_service, clock, slots=2, per_slot=6)
    clock.advance(DRAW_SECONDS + 3)
    assert memory_drainer.tick_room("demo").admitted == 4  # the window settles, drawn
    memory_service.put_room("demo", {"queueing": "fifo"})
    fresh(clock)
    places = {j.ticket: drawn_place(memory_service, j) for j in drawn}
    later = join_over(memory_service, clock, slots=1, per_slot=4)
    settle(clock)
    turns = let_in_turns(memory_service, memory_drainer, clock, drawn + later, max_active=4)
    in_order = [
        sorted(places.get(t, 100 + i) for i, t in enumerate(sorted(turn))) for turn in turns
    ]
    flat = [p for turn in in_order for p in turn]
    assert flat[:12] == list(range(12))  # the drawn window, in its published order, exactly once
    assert {t for turn in turns for t in turn} == {j.ticket for j in drawn + later}


def test_an_idle_random_room_still_lets_visitors_straight_in_and_draws_the_rest(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"shards": 4, "max_active": POOL_MIN + 3, "queueing": "random"})
    memory_drainer.tick_room("demo")
    fresh(clock)
    joins = [memory_service.join("demo", None) for _ in range(POOL_MIN + 9)]
    assert sum(isinstance(j.status, Admitted) for j in joins) == POOL_MIN
    queued = [j for j in joins if isinstance(j.status, Waiting)]
    clock.advance(60 + 3)  # the default draw window has closed and settled
    report = memory_drainer.tick_room("demo")
    assert (report.admitted, report.active) == (3, POOL_MIN + 3)
    fresh(clock)
    let_in = [j for j in queued if isinstance(memory_service.poll("demo", j.ticket), Admitted)]
    assert sorted(drawn_place(memory_service, j) for j in let_in) == [0, 1, 2]


def test_a_settle_retried_after_a_failure_keeps_the_draw_already_published(
    memory_service: WaitingRoom,
    memory_drainer: Drainer,
    memory_store: MemoryStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    random_room(memory_service, memory_drainer, clock, max_active=50)
    joined = join_over(memory_service, clock, slots=2, per_slot=8)
    clock.advance(DRAW_SECONDS + 3)
    commit = memory_store.commit_state

    def down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("the store went away after the slots were written")

    monkeypatch.setattr(memory_store, "commit_state", down)
    with pytest.raises(StoreUnavailable):
        memory_drainer.tick_room("demo")
    slots = sorted({read_ticket_payload(j.ticket)[0] for j in joined})
    written = [memory_store.get_settled_slot("demo", sl) for sl in slots]
    monkeypatch.setattr(memory_store, "commit_state", commit)
    assert memory_drainer.tick_room("demo").admitted == len(joined)
    assert [memory_store.get_settled_slot("demo", sl) for sl in slots] == written
    fresh(clock)
    assert all(isinstance(memory_service.poll("demo", j.ticket), Admitted) for j in joined)


def test_a_closed_room_settles_and_draws_its_last_partial_window(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    random_room(memory_service, memory_drainer, clock, max_active=100)
    joined = join_over(memory_service, clock, slots=1, per_slot=5)
    memory_service.set_status("demo", "closed", "ops")
    memory_drainer.tick_room("demo")
    clock.advance(70)  # past the last slot a join could reach: the window never fills
    memory_drainer.tick_room("demo")
    fresh(clock)
    docs = {memory_service.slot_document("demo", read_ticket_payload(j.ticket)[0]) for j in joined}
    assert [d.draw_size for d in docs] == [5]
    assert memory_drainer.tick_room("demo").reason == DORMANT  # nothing left to settle


@pytest.fixture
def api_client(memory_service: WaitingRoom) -> Iterator[TestClient]:
    """The API over the in-memory store, as an operator."""
    settings = ApiSettings(
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(wired_app(memory_service, settings), headers=headers) as client:
        yield client


def test_an_operator_sets_a_lottery_through_the_api(api_client: TestClient) -> None:
    r = api_client.put(
        "/admin/rooms/sale", json={"max_active": 5, "queueing": "random", "draw_seconds": 30}
    )
    assert r.status_code in (200, 201), r.text
    assert (r.json()["queueing"], r.json()["draw_seconds"]) == ("random", 30)


@pytest.mark.parametrize("seconds", [0, 601])
def test_a_draw_window_out_of_bounds_is_refused_with_a_422_naming_it(
    api_client: TestClient, seconds: int
) -> None:
    r = api_client.put(
        "/admin/rooms/sale", json={"max_active": 5, "queueing": "random", "draw_seconds": seconds}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and "draw_seconds" in r.json()["message"]


def test_the_cli_takes_the_lottery_settings() -> None:
    argv = ["rooms", "set", "sale", "--queueing", "random", "--draw-seconds", "30"]
    args = build_parser().parse_args(argv)
    assert (args.queueing, args.draw_seconds) == ("random", 30)


def test_places_map_back_to_each_ticket_of_a_window_once_and_outside_windows_in_order() -> None:
    rng = random.Random(7)
    slots, total = [], 0
    for i in range(9):
        counts = tuple(rng.randrange(0, 6) for _ in range(rng.choice((1, 4, 32))))
        if sum(counts):
            slots.append(SettledSlot(300 + i, counts, total))
            total += sum(counts)
    natural = take_tickets(slots, 300, 0, total)[0]
    assert tickets_at_ranks(slots, range(total)) == natural  # no draw: the natural order
    drawn = [s for s in slots if s.slot < 303] + draw_windows(
        [s for s in slots if s.slot >= 303], 3, "seed"
    )
    by_place = tickets_at_ranks(drawn, range(total))
    assert sorted(by_place) == sorted(natural)  # everyone once
    assert by_place[: drawn[0].total] == natural[: drawn[0].total]  # undrawn slots stay in order
    for rank, (slot, k, shard) in enumerate(by_place):
        doc = next(s for s in drawn if s.slot == slot)
        assert doc.drawn_rank(k, shard) == rank  # the place each client computes
